// Errors of getting the model: a ModelError, so `npm start` prints the message (which says what to do)
// without a stack trace, like every other model problem.
import { ModelError } from '../model.js';

/** The checkpoint cannot be read or is not a torchvision EfficientNet-B0 state_dict. */
export class CheckpointError extends ModelError {
  override name = 'CheckpointError';
}

/** The checkpoint could not be downloaded or failed its hash check. */
export class DownloadError extends ModelError {
  override name = 'DownloadError';
}
