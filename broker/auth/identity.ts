/** Who a verified token says the caller is, and what it grants. */
export interface Identity {
  user: string;
  /** App patterns: exact names, `*`, or globs such as `shop-*`. */
  apps: string[];
  roles: string[];
  admin: boolean;
  tokenId: string | undefined;
  /** `iat` in ms (0 when absent): revocation "every token of U issued before T" uses it. */
  issuedAt: number;
  expiresAt: number;
}

/** A copy its holder may change without changing the original (the lists are copied too). */
export function copyIdentity(identity: Identity): Identity {
  return { ...identity, apps: [...identity.apps], roles: [...identity.roles] };
}
