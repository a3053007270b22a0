/**
 * What is wrong with a token's text, if anything: a token (a JWT, an opaque string) is one
 * word of printable ASCII, and it travels in an HTTP header, which cannot carry a line break.
 */
export function tokenFault(token: string): string | undefined {
  if (/[\r\n]/.test(token)) return 'holds a line break';
  if (/\s/.test(token)) return 'holds a space';
  if (/[^\x21-\x7e]/.test(token)) return 'holds a character a token never has';
  return undefined;
}
