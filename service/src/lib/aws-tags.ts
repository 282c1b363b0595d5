// The AWS tags that the CDK stack and `ops ebs-snapshot` must agree on. The stack tags the data volume, lets
// Data Lifecycle Manager select it by tag, and grants the instance role CreateSnapshot/DeleteSnapshot only
// under conditions on these tags; the command finds the volume and tags (and later prunes) its snapshots
// with them. A drift between the two would only show as AccessDenied on the instance, so both import this
// module. Plain constants: the image gets them without aws-cdk-lib.

/** On the data volume, value: the stack name. DLM and the command select the volume by it. */
export const DATA_VOLUME_TAG = 'erp-image-search:data-volume';
/** On every snapshot: who made it. The instance role may only create and delete snapshots made by the command. */
export const CREATED_BY_TAG = 'erp-image-search:created-by';
/** CREATED_BY_TAG's value on snapshots made by `ops ebs-snapshot`. */
export const CREATED_BY_COMMAND = 'ebs-snapshot';
/** CREATED_BY_TAG's value on the daily snapshots of Data Lifecycle Manager (never pruned by the command). */
export const CREATED_BY_DLM = 'dlm';
/** On the command's snapshots: the stack, why, and when (informational; no permission depends on them). */
export const STACK_TAG = 'erp-image-search:stack';
export const REASON_TAG = 'erp-image-search:reason';
export const TIME_TAG = 'erp-image-search:time';
