/**
 * The token of an `Authorization: Bearer …` header (the scheme in any case); undefined when
 * there is no header, another scheme, or nothing after it. Whatever follows the scheme is the
 * token even when it cannot be one (`Bearer a b`): the verifier refuses it as a bad token,
 * where "no access token" would send the caller looking for the wrong mistake.
 */
export function bearerOf(authorization: string | undefined): string | undefined {
  const m = /^Bearer(?:\s+(.*?))?\s*$/i.exec(authorization ?? '');
  return m?.[1] || undefined;
}
