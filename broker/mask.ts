/**
 * Credentials found by their shape inside any string: a command line, an error message, a URL.
 * Used by the log and by everything the broker stores that a user typed (the audit trail, the
 * session table, recordings' headers). Shapes, not a list of tools: a secret written in a shape
 * none of these knows (`mysql -pSECRET`) is kept as typed.
 *
 * Every pattern runs in time linear in its input: a match may start only where a run of its
 * characters starts (the look-behinds), so a long run is scanned once, not once per position,
 * or what it scans from a start is bounded.
 * With `\b` instead, every `eyJ` inside one long run was a start of its own, and a request path
 * of `eyJ-` repeated took the broker seconds (hours for a 4 MiB message) to log.
 */
import { urlList } from './url-list.js';

const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/** `?token=…`, `&password=…`: parameters that carry credentials in URLs. */
const CREDENTIAL_PARAM = /([?&](?:ticket|access_token|token|access-token|password|passwd|secret|api_key|apikey|key|client_secret)=)[^&\s"'#]+/gi;

/**
 * `Authorization: Basic …` (the scheme kept); without a scheme, a value long enough to be a
 * credential (not `authorization: failed for …` in a message).
 */
const AUTHORIZATION = /(?<![\w-])(authorization:\s*)(?:(basic|bearer|digest|token|negotiate)\s+)?([^\s"']+)/gi;
const BARE_CREDENTIAL = /^[A-Za-z0-9._~+/=-]{16,}$/;
/** `Bearer …` on its own: a token's characters, at least 16 of them (not "a bearer token"). */
const BEARER = /(?<![\w-])(bearer\s+)[A-Za-z0-9._~+/-]{16,}=*/gi;

/**
 * `scheme://user:password@host`, the password up to its last `@` (written raw, it may hold one)
 * and never past a `/`, `?` or `#` (`http://host:8080/path@v2` has none). Both parts are bounded:
 * a match may start after any `:` or `/`, and an unbounded part would scan to the end of the run
 * from each (quadratic on `a://:` repeated).
 */
const URL_PASSWORD = /(?<![\w+.-])([a-z][a-z0-9+.-]{0,31}:\/\/[^\s:@/?#"']{0,256}:)[^\s"'/?#]{0,256}@/gi;

/** `NAME=value` and `--name=value`, where the name is one a secret goes by. */
const ASSIGNMENT = /(?<![\w-])(-{0,2}[\w-]+)=("[^"]*"|'[^']*'|[^\s"']+)/g;
/** `--name value` and `-name value`. */
const OPTION = /(?<![\w-])(--?[\w-]+)(\s+)("[^"]*"|'[^']*'|[^\s"'-][^\s"']*)/g;
/** Names secrets go by, as the end of a name (`DB_PASSWORD`, `--api-key`; not `TOKEN_FILE`). */
const SECRET_NAME = /(?:token|secret|passw(?:or)?d|passphrase|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|credentials?)$/i;
/** `-u user:password` (curl, wget); not a user and group (`-u 1000:1000`, `-u app:app`). */
const USER_PASSWORD = /((?:^|\s)(?:-u\s*|--user[=\s]\s*))([^\s:"']{1,256}):(?!\/\/)([^\s"']+)/g;
/** Option names that say there is no secret (`--no-password`, `--ask-password`). */
const NO_SECRET_OPTION = /^--?(?:no|ask|prompt)-/;

const REDACTED = '[redacted]';
const masked = (value: string) => value.startsWith('[redacted');

/** Masks the credentials found by shape in `text`. */
export function maskCredentials(text: string): string {
  return text
    .replace(JWT, '[redacted-jwt]')
    .replace(CREDENTIAL_PARAM, `$1${REDACTED}`)
    .replace(AUTHORIZATION, (all: string, head: string, scheme: string | undefined, value: string) =>
      masked(value) || (!scheme && !BARE_CREDENTIAL.test(value)) ? all : `${head}${scheme ? `${scheme} ` : ''}${REDACTED}`,
    )
    .replace(BEARER, `$1${REDACTED}`)
    .replace(URL_PASSWORD, `$1${REDACTED}@`)
    .replace(USER_PASSWORD, (all: string, head: string, user: string, second: string) => (second === user || /^\d+$/.test(second) || masked(second) ? all : `${head}${user}:${REDACTED}`))
    .replace(ASSIGNMENT, (all: string, name: string, value: string) => (SECRET_NAME.test(name) && !NO_SECRET_OPTION.test(name) && !masked(value) ? `${name}=${REDACTED}` : all))
    .replace(OPTION, (all: string, name: string, space: string, value: string) => (secretOption(name) && !masked(value) ? `${name}${space}${REDACTED}` : all));
}

/**
 * A command's arguments, masked as their command line would be (`--password`, `SECRET` stays two
 * arguments: the second is masked), for what keeps the arguments apart (the session table).
 */
export function maskArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (next !== undefined && /^--?[\w-]+$/.test(arg) && secretOption(arg) && !next.startsWith('-')) {
      out.push(maskCredentials(arg), REDACTED);
      i++;
      continue;
    }
    out.push(maskCredentials(arg));
  }
  return out;
}

/** `--password` takes a secret; `--no-password` takes none. */
function secretOption(name: string): boolean {
  return SECRET_NAME.test(name) && !NO_SECRET_OPTION.test(name);
}

/**
 * A setting's value as an error may show it: the user information of a URL (`redis://:pw@…`)
 * left out, whatever it holds, even where it makes the URL invalid.
 */
export function withoutCredentials(value: string): string {
  return urlList(value)
    .map((part) => part.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^\s]*@/i, '$1[credentials]@'))
    .join(',');
}
