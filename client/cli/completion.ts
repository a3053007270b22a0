import { loadSavedConfig } from '../config/store.js';
import { resolveBroker, resolveToken } from './settings.js';
import { SUBCOMMANDS, VALUE_OPTIONS } from './arguments.js';
import { cachedTargets } from './targets.js';

const BROKER_SUBCOMMANDS = ['add', 'ls', 'rm', 'use'];
/**
 * Options offered where an option is being typed (long forms only, as for every option): each
 * long option `enter --help` lists, and `--no-resume` beside `--resume` (a test keeps them equal).
 */
const OPTIONS = ['--broker', '--ca-file', '--cert', '--key', '--version', '--help', '--tty', '--interactive', '--no-stdin', '--no-tty', '--user', '--workdir', '--env', '--container', '--escape', '--resume', '--no-resume'];

/**
 * Candidates for the word being typed. `words` are the words after `enter`, the last one being
 * the (possibly empty) current word. Targets come from the broker's listing, cached briefly.
 * Never throws: completion that cannot reach the broker offers nothing.
 */
export async function complete(words: string[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const cur = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  let broker: string | undefined;
  const positionals: string[] = [];
  for (let i = 0; i < before.length; i++) {
    const w = before[i]!;
    if (w === '--') return [];
    if (VALUE_OPTIONS.has(w)) {
      if (w === '-b' || w === '--broker') broker = before[i + 1];
      i++;
      continue;
    }
    if (w.startsWith('--broker=')) broker = w.slice('--broker='.length);
    if (w.startsWith('-')) continue;
    positionals.push(w);
  }
  const prev = before[before.length - 1];
  const pick = (list: string[]) => [...new Set(list)].filter((c) => c.startsWith(cur)).sort();
  if (prev === '-b' || prev === '--broker') return pick(profileNames(env));
  if (prev === '--escape') return pick(['none', '~']);
  if (prev !== undefined && VALUE_OPTIONS.has(prev)) return [];
  if (cur.startsWith('-')) return pick(OPTIONS);

  const targets = async () => {
    try {
      const ref = resolveBroker(broker, env);
      return await cachedTargets(ref, () => resolveToken(ref, env), env);
    } catch (err) {
      if (env['ENTRY_DEBUG']) process.stderr.write(`enter: completion: ${(err as Error).message}\n`);
      return [];
    }
  };
  // After `exec`, an app named like a subcommand is still an app.
  const explicitExec = positionals[0] === 'exec';
  if (explicitExec) positionals.shift();
  else if (positionals.length > 0 && SUBCOMMANDS.includes(positionals[0]!)) {
    const [command, ...rest] = positionals;
    if (command === 'broker') {
      if (rest.length === 0) return pick(BROKER_SUBCOMMANDS);
      if (rest.length === 1 && (rest[0] === 'use' || rest[0] === 'rm')) return pick(profileNames(env));
      return [];
    }
    if (command === 'completion') return rest.length === 0 ? pick(['bash', 'zsh']) : [];
    if (command === 'ls') return rest.length === 0 ? pick((await targets()).map((t) => t.app)) : [];
    return [];
  }
  const [app, proc] = positionals;
  if (positionals.length === 0 && explicitExec) return pick((await targets()).map((t) => t.app));
  if (positionals.length === 0) return pick([...SUBCOMMANDS.filter((c) => c !== 'exec'), ...(await targets()).map((t) => t.app)]);
  if (positionals.length === 1) return pick((await targets()).filter((t) => t.app === app).map((t) => t.proc));
  if (positionals.length === 2) return pick((await targets()).filter((t) => t.app === app && t.proc === proc).map((t) => t.instance));
  return [];
}

function profileNames(env: NodeJS.ProcessEnv): string[] {
  try {
    return Object.keys(loadSavedConfig(env).profiles ?? {});
  } catch {
    return [];
  }
}

/** Completion for bash: `source <(enter completion bash)`. */
export function bashScript(): string {
  return `# bash completion for enter (Entry). Load it with
#   source <(enter completion bash)
# or save it as /etc/bash_completion.d/enter (or ~/.local/share/bash-completion/completions/enter).
_enter_complete() {
  local IFS=$'\\n'
  local words=("\${COMP_WORDS[@]:1:COMP_CWORD}")
  COMPREPLY=($(enter __complete "\${words[@]}" 2>/dev/null))
}
complete -o default -F _enter_complete enter
`;
}

/** Completion for zsh: `source <(enter completion zsh)`, or save as `_enter` in $fpath. */
export function zshScript(): string {
  return `#compdef enter
# zsh completion for enter (Entry). Load it with
#   source <(enter completion zsh)
# or save it as _enter in a directory of your $fpath (before compinit runs).
_enter() {
  local -a candidates
  candidates=("\${(@f)$(enter __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=(\${candidates:#})
  if (( \${#candidates} )); then
    compadd -Q -a candidates
  else
    _files
  fi
}
if [[ "\${funcstack[1]}" == "_enter" ]]; then
  _enter "$@"
else
  compdef _enter enter
fi
`;
}
