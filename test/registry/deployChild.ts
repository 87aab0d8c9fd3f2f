// A deploy run in a child process for the crash test: runs `modelwright deploy` with the options in argv[2] (JSON)
// and, at the stage named in argv[3], says so on stdout and waits there to be killed.
import { gatedDeployCommand } from '../../server/src/cli/gatedDeploy';

const options = JSON.parse(process.argv[2]);
const stopAt = process.argv[3];
gatedDeployCommand(
  {
    ...options,
    onStage: (stage) => {
      if (stage !== stopAt) return;
      process.stdout.write(`stage ${stage}\n`);
      return new Promise<void>(() => setInterval(() => {}, 1000));
    },
  },
  { stdout: process.stdout, stderr: process.stderr },
).then((code) => process.exit(code));
