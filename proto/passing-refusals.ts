/**
 * Refusals of a resume that say nothing of the session itself: the broker could not check the
 * credential just then (its key server or shared store did not answer), it is shutting down
 * (another broker behind the same address may take the session back), it counts too many
 * failed logins from this address, it could not hand the resume to the broker holding the
 * session over TLS (the session lives on there: behind a load balancer the next try may reach
 * that broker, or one whose TLS towards it works), or the request did not reach it whole in
 * time (a slow link, which is what a resume comes back through). A client keeps trying, as for
 * a broker it cannot reach, until the grace period ends.
 *
 * Any other code of the registry ends the session at once, whether the broker says it in a CLOSE
 * once the upgrade is done (a token refused, expired or revoked; another user or target; a
 * session it no longer holds) or in the JSON body of its HTTP answer to the upgrade (a request
 * it refuses as such: headers past its limit, a malformed handshake, a path or origin it does not
 * serve): the next try would be refused the same. An HTTP answer without a code is a proxy's,
 * which speaks for itself, not the session (502 while the broker restarts, 404 or 503 from an
 * ingress with no backend ready yet): tried again, as a broker not reachable.
 */
export const PASSING_REFUSALS: ReadonlySet<string> = new Set(['ENTRY_AUTH_UNAVAILABLE', 'ENTRY_STORE_UNAVAILABLE', 'ENTRY_DRAINING', 'ENTRY_RATE_LIMITED', 'ENTRY_HANDOFF_REFUSED', 'ENTRY_REQUEST_TIMEOUT']);

/** What a CLOSE line (its colours already stripped) says, without `entry: ` and its framing. */
export function refusalText(closeLine: string): string {
  return closeLine.trim().replace(/^entry: /, '');
}

/**
 * The end told when the grace period passed without a resume: with the last refusal passed over,
 * most likely why (a hand-off refused on every try), so that it is said, not lost. Named as the
 * last refusal, not the last try: tries after it may have failed to connect at all.
 */
export function resumeExpiredMessage(lastRefusal: string): string {
  const refused = lastRefusal ? ` (the last refusal: ${lastRefusal})` : '';
  return `the connection broke and the session could not be resumed in time${refused}`;
}
