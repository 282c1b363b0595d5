// Developer tool (a soak, not a test): the crash soak of test/support/kill-soak.ts for many rounds. The real
// server is killed with SIGKILL in the middle of ingests, item deletes and wipes; after each restart files
// and points must agree and no acknowledged change may be lost. Prints one line per round and a JSON summary.
//   npm run soak:kill -- [--rounds 25] [--model path/to/model.onnx]
import { parseArgs } from 'node:util';
import { runKillSoak } from '../../test/support/kill-soak.js';
import { numberFlag, runTool } from './tool.js';

const HELP = `Usage: npm run soak:kill -- [--rounds N] [--max-round-ms MS] [--model FILE]
  --rounds        kill -9 rounds (default 25)
  --max-round-ms  longest time before the kill in a round (default 3000)
  --model         ONNX model to serve (default: a small generated one)`;

await runTool(HELP, async () => {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '25' },
      'max-round-ms': { type: 'string', default: '3000' },
      model: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  const result = await runKillSoak({
    rounds: numberFlag(values.rounds, 'rounds'),
    maxRoundMs: numberFlag(values['max-round-ms'], 'max-round-ms', 400),
    modelPath: values.model,
    log: (line) => console.error(line),
  });
  console.log(JSON.stringify(result));
  if (result.lost.length > 0 || result.cameBack.length > 0 || result.inconsistentRounds > 0) process.exitCode = 1;
});
