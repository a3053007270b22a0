/** Names close to a misspelt one, and what exists where a target was not found. */

/** Edit distance with adjacent transpositions counting one (`wbe` is one from `web`). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The names among `known` that `typed` is likely a slip for, closest first: another case, or a
 * few edits away (one for short names, two from five letters on).
 */
export function closeNames(typed: string, known: Iterable<string>): string[] {
  const limit = typed.length >= 5 ? 2 : 1;
  const scored: Array<[string, number]> = [];
  for (const name of new Set(known)) {
    if (name === typed) continue;
    const d = name.toLowerCase() === typed.toLowerCase() ? 0 : editDistance(typed, name);
    if (d <= limit) scored.push([name, d]);
  }
  return scored.sort((x, y) => x[1] - y[1] || x[0].localeCompare(y[0])).map(([name]) => name);
}

export interface TargetName {
  app: string;
  proc: string;
  instance: string;
}

const MAX_LISTED = 8;

/** `a, b, c` of up to MAX_LISTED names, and how many more. */
function listed(names: string[]): string {
  const shown = names.slice(0, MAX_LISTED).join(', ');
  return names.length > MAX_LISTED ? `${shown} and ${names.length - MAX_LISTED} more` : shown;
}

/** Most names one suggestion offers: the closest, for a short line. */
const MAX_SUGGESTED = 3;

/**
 * `did you mean a or b?` for names a word is likely a slip for (from `closeNames`), each written
 * after `prefix` (`enter `, for a command); `Did` where it opens a sentence. Nothing for none.
 */
export function didYouMean(close: readonly string[], options: { prefix?: string; capital?: boolean } = {}): string {
  if (close.length === 0) return '';
  const names = close.slice(0, MAX_SUGGESTED).map((name) => `${options.prefix ?? ''}${name}`);
  return `${options.capital ? 'Did' : 'did'} you mean ${names.join(' or ')}?`;
}

/** `did you mean -b prod?` for a bare broker name close to the profile `profile`. */
export function didYouMeanProfile(profile: string, options: { capital?: boolean } = {}): string {
  return didYouMean([profile], { ...options, prefix: '-b ' });
}

/** A suggestion that opens what follows it on its line, with the space between; or nothing. */
export const leading = (phrase: string): string => (phrase ? `${phrase} ` : '');

/**
 * What exists near a target that was not found, from the targets the token may enter: the
 * instances of its proc, the procs of its app, or the apps with a close name. Nothing when the
 * target is among them: what was not found is inside it (a pod's container), and the broker's
 * message names it.
 */
export function notFoundSuggestion(target: TargetName, known: readonly TargetName[]): string | undefined {
  const ofApp = known.filter((t) => t.app === target.app);
  if (ofApp.length === 0) {
    const close = closeNames(target.app, known.map((t) => t.app));
    return `No app named ${target.app} among those you may enter: ${leading(didYouMean(close))}\`enter ls\` lists them.`;
  }
  const ofProc = ofApp.filter((t) => t.proc === target.proc);
  if (ofProc.length === 0) {
    const procs = [...new Set(ofApp.map((t) => t.proc))].sort();
    return `${target.app} has no proc ${target.proc}: ${leading(didYouMean(closeNames(target.proc, procs)))}its procs are ${listed(procs)}.`;
  }
  if (ofProc.some((t) => t.instance === target.instance)) return undefined;
  const instances = [...new Set(ofProc.map((t) => t.instance))].sort((x, y) => Number(x) - Number(y) || x.localeCompare(y));
  return `${target.app}/${target.proc} has instance${instances.length > 1 ? 's' : ''} ${listed(instances)} (\`enter ls ${target.app}\` shows their state).`;
}
