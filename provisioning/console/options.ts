// STUB (issue 13, owner H-auth): how the IT console signs people in. See SPEC.
export interface ConsoleOptions {
  /** The organisation's OpenID Connect issuer URL. */
  issuer: string;
  clientId: string;
  /** Confidential client (the service exchanges the code server-side). */
  clientSecret?: string;
  /** ID-token claim listing the user's groups (default "groups"). */
  groupsClaim?: string;
  /** Group that makes a user an admin (default "sealroom-admins"). */
  adminGroup?: string;
  /** Group that makes a user helpdesk, read-only (default "sealroom-helpdesk"). */
  helpdeskGroup?: string;
  /** Session lifetime in hours (default 8). */
  sessionHours?: number;
  /** Built console files (default dist/console). */
  staticDir?: string;
}
