/**
 * The signed-in token, kept in sessionStorage: it lives as long as the browser tab, is never
 * sent automatically (unlike a cookie), and other tabs sign in on their own.
 */
const KEY = 'entry.token';

export function loadToken(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    return undefined; // storage disabled: sign in again on reload
  }
}

export function saveToken(token: string): void {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // Storage disabled: the token lives in memory only.
  }
}

export function clearToken(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // Nothing stored.
  }
}
