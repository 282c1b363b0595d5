// Child process for the cross-process lock tests: takes one lock (an item's, or the named sync lock), says so on
// stdout, and holds it until it is killed.
import { NamedProcessLock, ProcessLocks } from '../../service/src/lib/process-lock.js';

const [mode, dir, name] = process.argv.slice(2);
if (mode === 'named') {
  const lock = new NamedProcessLock(`${dir}/${name}`);
  if (!(await lock.tryTake('the lock-holder test process'))) throw new Error('the named lock is taken');
  process.stdout.write('held\n');
} else {
  const locks = new ProcessLocks({ dir, namespace: mode });
  void locks.run(name, async () => {
    process.stdout.write('held\n');
    await new Promise(() => {}); // until killed
  });
}
setInterval(() => {}, 1000);
