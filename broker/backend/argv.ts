import { EntryError } from '../errors.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Turns argv bytes into an engine's command. Docker's Engine API and Kubernetes' exec both
 * carry the command as strings (JSON, URL query), so an
 * argument that is not valid UTF-8 cannot be sent as is; then the command runs through a
 * small ASCII-only `sh` script that rebuilds each argument from octal escapes with printf.
 */
export function toEngineCmd(argv: readonly Uint8Array[]): string[] {
  if (argv.length === 0) throw new EntryError('ENTRY_BAD_REQUEST', 'empty command');
  const decoded: string[] = [];
  let allUtf8 = true;
  for (const arg of argv) {
    if (arg.includes(0)) throw new EntryError('ENTRY_BAD_REQUEST', 'an argument contains a NUL byte');
    if (!allUtf8) continue;
    try {
      decoded.push(strictUtf8.decode(arg));
    } catch {
      allUtf8 = false;
    }
  }
  if (allUtf8) return decoded;
  return ['/bin/sh', '-c', rebuildScript(argv)];
}

function octal(arg: Uint8Array): string {
  let out = '';
  for (const b of arg) out += `\\${b.toString(8).padStart(3, '0')}`;
  return out;
}

/** `a1="$(printf '…x')"; a1="${a1%x}"` keeps trailing newlines that $(…) would strip. */
function rebuildScript(argv: readonly Uint8Array[]): string {
  const lines = argv.map((arg, i) => `a${i}="$(printf '${octal(arg)}x')"; a${i}="\${a${i}%x}"`);
  const call = argv.map((_, i) => `"$a${i}"`).join(' ');
  return `${lines.join('\n')}\nexec ${call}`;
}
