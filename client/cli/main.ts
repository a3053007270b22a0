#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { BrokerRef } from '../config/store.js';
import { ClientError } from '../protocol/client-error.js';
import { endReason } from '../protocol/connection.js';
import { parseEscapeChar } from './escape.js';
import { EXIT_CLIENT_FAILURE, EXIT_OUTPUT_CLOSED, runExecCommand } from './exec-command.js';
import type { FailureContext } from './hints.js';
import { envSwitch, lastTtyFlag, manyValues, oneNumber, oneValue, sessionId, usageError, VALUE_OPTIONS } from './arguments.js';
import { resolveBroker, resolveToken } from './settings.js';

// Everything but the exec path is imported when its command runs: scripts call
// `enter … -- CMD` in loops, and each module loaded at start-up (the OIDC client, undici for
// TLS, jose) costs every call its compile time.
const lazy = {
  brokerCommand: () => import('./broker-command.js'),
  admin: () => import('./admin-commands.js'),
  audit: () => import('./audit-commands.js'),
  completion: () => import('./completion.js'),
  hints: () => import('./hints.js'),
  info: () => import('./info-commands.js'),
  login: () => import('./login-command.js'),
  tls: () => import('./tls.js'),
  version: () => import('../../broker/package-version.js'),
};

/** Commands that never reach a broker (`broker add` does): a stale CA path must not break them. */
const isLocal = (words: ReadonlyArray<string | number>): boolean => words[0] === 'completion' || (words[0] === 'broker' && words[1] !== 'add');

/** What the failure handler knows about the command that failed, for its hint. */
const context: FailureContext = {};

function broker(flag: string | undefined): BrokerRef {
  context.ref = resolveBroker(flag);
  return context.ref;
}

/** Prints `enter: <what went wrong>` and, when there is one, the next step; exits 255. */
async function failWith(code: string, message: string): Promise<never> {
  process.stderr.write(`enter: ${message}\n`);
  const hint = await lazy
    .hints()
    .then((h) => h.nextStep(code, context, message))
    .catch(() => undefined);
  // Messages the CLI wrote itself may already say which login to run.
  if (hint && !message.includes('run `enter login')) process.stderr.write(`  ${hint}\n`);
  process.exit(EXIT_CLIENT_FAILURE);
}

/** Upgrades refused with a plain HTTP status carry no Entry code: infer it for the hint. */
function codeOf(err: ClientError): string {
  const status = err.httpStatus;
  if (err.code !== 'ENTRY_CONNECT_FAILED' || status === undefined) return err.code;
  if (status === 401) return 'ENTRY_BAD_TOKEN';
  if (status === 403) return 'ENTRY_FORBIDDEN';
  // 502, 503, 504: a proxy in front of a broker that is down or restarting.
  if (status >= 500) return 'ENTRY_CONNECT_FAILED';
  return 'ENTRY_BAD_ANSWER';
}

/**
 * Output of the commands other than exec and watch (which pass the broker's output on with
 * sinks of their own): a reader that went away (`enter ls | head -1`) stops the command quietly,
 * as a local program ended by SIGPIPE; output that cannot be written (a full disk) is a failure.
 */
function onStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') process.exit(EXIT_OUTPUT_CLOSED);
  void failWith('', `writing the output failed: ${err.message}`);
}

/** The top-level usage, indented as written here. */
const USAGE = [
  'Enter your containers through an Entry broker.',
  '',
  'Usage:',
  '  enter <app> <proc> <instance>              interactive shell',
  '  enter <app> <proc> <instance> -- <cmd…>    run a command',
  '  enter ls [app]                             what you may enter',
];

/**
 * yargs wraps help to the terminal with each line's leading blanks trimmed, the usage lines'
 * indentation with them: put it back.
 */
function indentUsage(help: string): string {
  const indented = new Map(USAGE.filter((l) => l.startsWith(' ')).map((l) => [l.trimStart(), l]));
  return help
    .split('\n')
    .map((line) => indented.get(line) ?? line)
    .join('\n');
}

const printVersion = async (): Promise<never> => {
  process.stdout.write(`enter ${(await lazy.version()).PACKAGE_VERSION}\n`);
  process.exit(0);
};

async function main(): Promise<void> {
  process.stdout.on('error', onStdoutError);
  const argv = hideBin(process.argv);
  // Shell completion calls back here with the words typed so far (see `enter completion`).
  if (argv[0] === '__complete') {
    const candidates = await (await lazy.completion()).complete(argv.slice(1));
    process.stdout.write(candidates.map((c) => `${c}\n`).join(''));
    return;
  }
  const dashdash = argv.indexOf('--');
  const command = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  const ours = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  // Wherever it is (`enter -b prod --version`), unless it is an option's value (`-w -V`).
  if (ours.some((a, i) => (a === '--version' || a === '-V') && !VALUE_OPTIONS.has(ours[i - 1] ?? ''))) await printVersion();
  const parser = yargs(ours);
  parser
    .scriptName('enter')
    // Off before the options: ours is declared as one of them, and printed without yargs.
    .version(false)
    .usage(USAGE.join('\n'))
    .option('broker', {
      alias: 'b',
      type: 'string',
      coerce: oneValue('-b'),
      describe: 'broker profile name or URL (default: ENTRY_BROKER, else the one chosen with enter broker use)',
    })
    .option('ca-file', { type: 'string', coerce: oneValue('--ca-file'), describe: 'PEM CA to trust for an https:// broker, on top of the system\'s (default: ENTRY_CA_FILE)' })
    .option('cert', { type: 'string', coerce: oneValue('--cert'), describe: 'PEM client certificate, for brokers that require one (default: ENTRY_CERT_FILE)' })
    .option('key', { type: 'string', coerce: oneValue('--key'), describe: 'PEM key of --cert (default: ENTRY_KEY_FILE)' })
    // Listed for the help; answered above, before any command's words are asked for.
    .option('version', { alias: 'V', type: 'boolean', describe: "print enter's version" })
    .middleware(async (args) => {
      // Help names no command to run, whatever follows -- (`enter app web 1 -h -- ls`).
      if (args['help']) return;
      const sub = args._[0];
      if (sub !== undefined && sub !== 'exec' && command.length > 0) {
        throw new ClientError('ENTRY_BAD_REQUEST', `enter ${sub} runs no command: what follows -- is for enter APP PROC INSTANCE -- CMD`);
      }
      if (isLocal(args._)) return;
      await (await lazy.tls()).applyCliTls({ caFile: args['ca-file'] as string | undefined, cert: args['cert'] as string | undefined, key: args['key'] as string | undefined });
    })
    .command(
      'login',
      'log in to the broker: OIDC in the browser (--device without one), or save a token',
      (y) =>
        y
          .option('token', { type: 'string', coerce: oneValue('--token'), describe: 'save this token (avoid: it lands in shell history; pipe it on stdin instead)' })
          .option('device', { type: 'boolean', describe: 'device-code login: for machines without a browser' })
          .option('browser', { type: 'boolean', describe: 'browser login even when stdin is not a terminal' })
          .option('open', { type: 'boolean', default: true, describe: 'open the browser (--no-open: only print the URL)' })
          .option('port', { type: 'number', coerce: oneNumber('--port', 1), describe: 'loopback port for the login redirect [default: any free port]' })
          .option('timeout', { type: 'number', default: 300, coerce: oneNumber('--timeout', 1), describe: 'seconds to wait for the login to finish' })
          .example('enter login', 'log in to the default broker in your browser')
          .example('enter login -b prod --device', 'log in from a machine without a browser')
          .example('printf %s "$TOKEN" | enter login -b prod', 'save a token you already have'),
      async (args) => {
        const ref = broker(args.broker);
        await (await lazy.login()).loginCommand(ref, {
          ...(args.token !== undefined ? { token: args.token } : {}),
          device: Boolean(args.device),
          browser: Boolean(args.browser),
          open: args.open,
          ...(args.port ? { port: args.port } : {}),
          timeoutSec: args.timeout,
        });
      },
    )
    .command('logout', 'forget the token for the broker (and revoke its refresh token)', {}, async (args) => {
      await (await lazy.login()).logoutCommand(broker(args['broker'] as string | undefined));
    })
    .command(
      'status',
      'broker reachable and its version, who your token says you are, until when, your grants',
      (y) => y.option('json', { type: 'boolean', describe: 'JSON output' }),
      async (args) => {
        process.exitCode = await (await lazy.info()).statusCommand(broker(args.broker), Boolean(args.json));
      },
    )
    .command(
      'ls [app]',
      'list the containers you may enter (app, proc, instance, state, host, age)',
      (y) =>
        y
          .positional('app', { type: 'string', describe: 'only this app (* and ? wildcards)' })
          .option('json', { type: 'boolean', describe: 'JSON output: an array of {app, proc, instance, state, host, created, …}' }),
      async (args) => {
        await (await lazy.info()).listCommand(broker(args.broker), args.app, Boolean(args.json));
      },
    )
    .command('broker', 'manage broker profiles (like kubectl contexts)', (y) =>
      y
        .command(
          'add <name> <url>',
          'add (or re-point) a broker profile',
          (yy) =>
            yy
              .positional('name', { type: 'string', describe: 'profile name' })
              .positional('url', { type: 'string', describe: 'broker URL, e.g. https://entry.example.com' })
              .option('use', { type: 'boolean', describe: 'make it the default' }),
          async (args) => (await lazy.brokerCommand()).brokerAdd(args.name!, args.url!, { use: Boolean(args.use) }),
        )
        .command('use <name>', 'make a profile the default broker', (yy) => yy.positional('name', { type: 'string' }), async (args) => (await lazy.brokerCommand()).brokerUse(args.name!))
        .command(['ls', 'list'], 'list broker profiles and logins', (yy) => yy.option('json', { type: 'boolean' }), async (args) => (await lazy.brokerCommand()).brokerList(Boolean(args.json)))
        .command(['rm <name>', 'remove'], 'remove a profile and its token', (yy) => yy.positional('name', { type: 'string' }), async (args) => (await lazy.brokerCommand()).brokerRemove(args.name!))
        .demandCommand(1, 'say what to do: enter broker add|use|ls|rm'),
    )
    .command(
      'sessions',
      'list live sessions on every broker (admin)',
      (y) => y.option('json', { type: 'boolean', describe: 'JSON output' }),
      async (args) => {
        const ref = broker(args.broker);
        await (await lazy.admin()).listSessionsCommand(ref.url, await resolveToken(ref), Boolean(args.json));
      },
    )
    .command(
      'kill <id>',
      'end a session wherever it runs, and its processes (admin)',
      (y) => y.positional('id', { type: 'string', describe: 'session id, from enter sessions' }),
      async (args) => {
        const id = sessionId(args.id!);
        const ref = broker(args.broker);
        await (await lazy.admin()).killSessionCommand(ref.url, await resolveToken(ref), id);
      },
    )
    .command(
      'watch <id>',
      'follow a running session read-only, wherever it runs (admin); Ctrl-C stops watching',
      (y) => y.positional('id', { type: 'string', describe: 'session id, from enter sessions' }),
      async (args) => {
        process.stdout.off('error', onStdoutError);
        const id = sessionId(args.id!);
        const ref = broker(args.broker);
        process.exitCode = await (await lazy.audit()).watchCommand(ref.url, await resolveToken(ref), id);
      },
    )
    .command(
      'replay <id>',
      "play a session's recording in this terminal (admin)",
      (y) =>
        y
          .positional('id', { type: 'string', describe: 'session id, from enter sessions or the audit trail' })
          // Slower than a hundredth, a pause of the recording would outlast a timer's range.
          .option('speed', { type: 'number', default: 1, coerce: oneNumber('--speed', 0.01), describe: 'playback speed factor' })
          .option('idle-limit', { type: 'number', default: 2, coerce: oneNumber('--idle-limit', 0), describe: 'longest pause kept, in seconds' }),
      async (args) => {
        const id = sessionId(args.id!);
        const ref = broker(args.broker);
        await (await lazy.audit()).replayCommand(ref.url, await resolveToken(ref), id, { speed: args.speed, idleLimit: args['idle-limit'] });
      },
    )
    .command(
      'completion [shell]',
      'print the shell completion script (bash or zsh)',
      (y) =>
        y
          .positional('shell', { type: 'string', choices: ['bash', 'zsh'], describe: 'default: from $SHELL' })
          .example('source <(enter completion bash)', 'in ~/.bashrc')
          .example('source <(enter completion zsh)', 'in ~/.zshrc, after compinit'),
      async (args) => {
        const shell = args.shell ?? (/zsh$/.test(process.env['SHELL'] ?? '') ? 'zsh' : 'bash');
        const { bashScript, zshScript } = await lazy.completion();
        process.stdout.write(shell === 'zsh' ? zshScript() : bashScript());
      },
    )
    .command(
      ['exec <app> <proc> <instance>', '$0'],
      'open a shell, or run the command after -- (`exec` is only needed for apps named like a command)',
      (y) =>
        y
          .positional('app', { type: 'string', describe: 'application name' })
          .positional('proc', { type: 'string', describe: 'process (service) name' })
          .positional('instance', { type: 'string', describe: 'instance number (from 1; a StatefulSet ordinal from 0), or a pod name' })
          .option('tty', { alias: 't', type: 'boolean', describe: 'force a TTY (the last of -t and -T counts)' })
          // `enter -it app web 1`, typed from docker habit, works as meant.
          .option('interactive', { alias: 'i', type: 'boolean', describe: 'taken for docker exec habits: stdin is passed on unless -n' })
          .option('no-stdin', { alias: 'n', type: 'boolean', describe: 'do not read stdin: the command\'s input ends at once (ssh -n; for loops reading a list)' })
          // What yargs makes of --no-stdin (stdin: false); declared so that strict mode takes it.
          .option('stdin', { type: 'boolean', hidden: true })
          .option('no-tty', { alias: 'T', type: 'boolean', describe: 'never allocate a TTY' })
          .option('user', { alias: 'u', type: 'string', coerce: oneValue('-u'), describe: 'run as USER (name, uid or uid:gid) [default: the image\'s]' })
          .option('workdir', { alias: 'w', type: 'string', coerce: oneValue('-w'), describe: 'working directory [default: the image\'s]' })
          // One value per -e (docker's way): an array option would take the positionals after it too.
          .option('env', { alias: 'e', type: 'string', coerce: manyValues('-e'), describe: 'set KEY=VALUE, or KEY to pass this shell\'s value (repeatable)' })
          .option('container', { alias: 'c', type: 'string', coerce: oneValue('-c'), describe: 'container of a multi-container Kubernetes pod (default: the pod\'s default container)' })
          .option('escape', {
            type: 'string',
            coerce: oneValue('--escape'),
            describe: 'escape character of interactive sessions (~. ends, ~? lists), ^X for a control key, or none [default: ENTRY_ESCAPE, else ~]',
          })
          .option('resume', {
            type: 'boolean',
            describe: 'reconnect and resume the session when the connection breaks (--no-resume: end it)',
          })
          .example('enter demo web 1', 'a shell in demo/web #1')
          .example('enter demo web 1 -- ls -l /', 'run a command; its exit status is yours')
          .example('echo hi | enter demo web 1 -- cat', 'stdin works; stdout and stderr stay apart')
          .example('enter shop api 0 -c sidecar', 'a shell in the sidecar container of pod api-0'),
      async (args) => {
        process.stdout.off('error', onStdoutError);
        const ref = broker(args.broker);
        context.app = args.app!;
        // As docker exec: KEY=VALUE, or KEY alone for this shell's own value (left out when unset).
        const env: string[] = [];
        for (const kv of args.env ?? []) {
          if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(kv)) env.push(kv);
          else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(kv)) {
            const own = process.env[kv];
            if (own !== undefined) env.push(`${kv}=${own}`);
          } else throw new ClientError('ENTRY_BAD_REQUEST', `-e wants KEY=VALUE or KEY, got ${JSON.stringify(kv)}`);
        }
        const resume = args.resume ?? envSwitch('ENTRY_RESUME', true);
        const noStdin = args.n === true || args.stdin === false;
        // Without stdin there is no keyboard to give a TTY to, unless -t asks for one all the same.
        const interactiveLocal = Boolean(!noStdin && process.stdin.isTTY && process.stdout.isTTY);
        const tty = lastTtyFlag(ours) ?? interactiveLocal;
        // Escapes are read from a keyboard only: a script's ENTRY_ESCAPE is no reason to fail it.
        let escapeChar: number | null = null;
        if (tty && !noStdin && process.stdin.isTTY) {
          const fromEnv = process.env['ENTRY_ESCAPE'] || undefined;
          const [source, value] = args.escape !== undefined ? ['--escape', args.escape] : fromEnv !== undefined ? ['ENTRY_ESCAPE', fromEnv] : ['', '~'];
          try {
            escapeChar = parseEscapeChar(value);
          } catch (err) {
            throw new ClientError('ENTRY_BAD_REQUEST', `${source} ${(err as Error).message}`);
          }
        }
        const token = await resolveToken(ref);
        context.token = token;
        const target = { app: args.app!, proc: args.proc!, instance: args.instance! };
        context.target = target;
        const outcome = await runExecCommand({
          broker: ref.url,
          token,
          target,
          // As Node decoded them from UTF-8: bytes that are not UTF-8 are lost before here (README, Known limits).
          command: command.map((a) => Buffer.from(a, 'utf8')),
          tty,
          user: args.user ?? '',
          workdir: args.workdir ?? '',
          env,
          container: args.container ?? '',
          escapeChar,
          stdin: !noStdin,
          resume,
        });
        if (outcome.outputFailed) await failWith('', `writing the output failed: ${outcome.outputFailed.message}`);
        // The reader of our output went away: stop quietly, as a program ended by SIGPIPE.
        if (outcome.outputClosed) process.exit(outcome.status);
        if (outcome.escaped) {
          process.stderr.write(`enter: connection to ${target.app}/${target.proc}/${target.instance} closed.\n`);
          process.exit(outcome.status);
        }
        if (outcome.endedBy) {
          process.stderr.write(`enter: session ended by ${outcome.endedBy}\n`);
          process.exit(outcome.status);
        }
        const { end } = outcome;
        if (end.exitCode !== undefined) process.exit(end.exitCode);
        await failWith(end.code, endReason(end));
      },
    )
    .demandCommand(1)
    .strict()
    .help()
    .alias('help', 'h')
    .fail((msg, err) => {
      if (err) throw err;
      if (argv.length === 0) {
        // `enter` alone: what it does and how, as ssh prints its usage. `enter -- ls` is a
        // command without its target: said as any other missing word.
        parser.showHelp((help) => process.stderr.write(`${indentUsage(help)}\n`));
        process.exit(EXIT_CLIENT_FAILURE);
      }
      const usage = usageError(msg, ours);
      process.stderr.write(`enter: ${usage.message}\n  ${usage.hint}\n`);
      process.exit(EXIT_CLIENT_FAILURE);
    });
  // Help is taken as text (yargs then prints nothing and runs no command) to indent its usage.
  if (ours.includes('--help') || ours.includes('-h')) {
    const help = await new Promise<string>((resolve, reject) => {
      // A failure comes as `err`, and rejects the promise as well: both are handled here.
      parser.parseAsync(ours, {}, (err, _args, output) => (err ? reject(err) : resolve(output))).catch(reject);
    });
    process.stdout.write(`${indentUsage(help)}\n`);
    return;
  }
  await parser.parseAsync();
}

main().catch(async (err: unknown) => {
  if (err instanceof ClientError) await failWith(codeOf(err), err.message);
  await failWith('', err instanceof Error ? err.message : String(err));
});
