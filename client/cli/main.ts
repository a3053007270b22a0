#!/usr/bin/env node
import { createInterface } from 'node:readline';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { normaliseBrokerUrl, saveToken } from '../config/store.js';
import { ClientError } from '../protocol/client-error.js';
import { EXIT_CLIENT_FAILURE, runExecCommand } from './exec-command.js';
import { resolveBroker, resolveToken } from './settings.js';
import { applyCliTls } from './tls.js';

function fail(message: string): never {
  process.stderr.write(`enter: ${message}\n`);
  process.exit(EXIT_CLIENT_FAILURE);
}

async function readTokenInteractively(): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString().trim();
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  process.stderr.write('Paste your Entry token (input hidden): ');
  // Hide what is typed: the readline echo goes nowhere.
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => undefined;
  const token = await new Promise<string>((resolve) => rl.question('', resolve));
  rl.close();
  process.stderr.write('\n');
  return token.trim();
}

async function main(): Promise<void> {
  const argv = hideBin(process.argv);
  const dashdash = argv.indexOf('--');
  const command = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  const ours = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  await yargs(ours)
    .scriptName('enter')
    .usage('Enter your containers through an Entry broker.\n\nUsage:\n  enter <app> <proc> <instance>              interactive shell\n  enter <app> <proc> <instance> -- <cmd…>    run a command')
    .option('broker', { alias: 'b', type: 'string', describe: 'broker URL (default: ENTRY_BROKER, or the one you logged in to)' })
    .option('ca-file', { type: 'string', describe: 'PEM CA to trust for an https:// broker, on top of the system\'s (default: ENTRY_CA_FILE)' })
    .option('cert', { type: 'string', describe: 'PEM client certificate, for brokers that require one (default: ENTRY_CERT_FILE)' })
    .option('key', { type: 'string', describe: 'PEM key of --cert (default: ENTRY_KEY_FILE)' })
    .middleware((args) => applyCliTls({ caFile: args['ca-file'] as string | undefined, cert: args['cert'] as string | undefined, key: args['key'] as string | undefined }))
    .command(
      'login',
      'save a token for a broker (read from --token, stdin or a prompt)',
      (y) => y.option('token', { type: 'string', describe: 'the token (avoid: it lands in shell history)' }),
      async (args) => {
        const broker = args.broker ? normaliseBrokerUrl(args.broker) : resolveBroker(undefined);
        const token = args.token ?? (await readTokenInteractively());
        if (!token) fail('no token given');
        saveToken(broker, token, { makeCurrent: true });
        process.stderr.write(`enter: token saved for ${broker}\n`);
      },
    )
    .command(
      '$0 <app> <proc> <instance>',
      'open a shell, or run the command after --',
      (y) =>
        y
          .positional('app', { type: 'string', describe: 'application name' })
          .positional('proc', { type: 'string', describe: 'process (service) name' })
          .positional('instance', { type: 'string', describe: 'instance number, from 1' })
          .option('tty', { alias: 't', type: 'boolean', describe: 'force a TTY' })
          .option('no-tty', { alias: 'T', type: 'boolean', describe: 'never allocate a TTY' })
          .option('user', { alias: 'u', type: 'string', default: '', describe: 'run as USER (name, uid or uid:gid)' })
          .option('workdir', { alias: 'w', type: 'string', default: '', describe: 'working directory' })
          .option('env', { alias: 'e', type: 'string', array: true, default: [] as string[], describe: 'set KEY=VALUE (repeatable)' })
          .example('enter demo web 1', 'a shell in demo/web #1')
          .example('enter demo web 1 -- ls -l /', 'run a command; its exit status is yours')
          .example('echo hi | enter demo web 1 -- cat', 'stdin works; stdout and stderr stay apart'),
      async (args) => {
        const broker = resolveBroker(args.broker);
        const token = resolveToken(broker);
        const interactiveLocal = Boolean(process.stdin.isTTY && process.stdout.isTTY);
        const tty = args['no-tty'] ? false : args.tty ? true : interactiveLocal;
        for (const kv of args.env) if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(kv)) fail(`-e wants KEY=VALUE, got ${JSON.stringify(kv)}`);
        const status = await runExecCommand({
          broker,
          token,
          target: { app: args.app!, proc: args.proc!, instance: args.instance! },
          // Arguments are passed on as the bytes the OS gave us.
          command: command.map((a) => Buffer.from(a, 'utf8')),
          tty,
          user: args.user,
          workdir: args.workdir,
          env: args.env,
        });
        process.exit(status);
      },
    )
    .demandCommand(1)
    .strict()
    .help()
    .alias('help', 'h')
    .version(false)
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`enter: ${msg}\nRun enter --help for usage.\n`);
      process.exit(EXIT_CLIENT_FAILURE);
    })
    .parseAsync();
}

main().catch((err: unknown) => {
  fail(err instanceof ClientError || err instanceof Error ? err.message : String(err));
});
