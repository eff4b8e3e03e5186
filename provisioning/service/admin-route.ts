// What every admin route declares in its schema: the admin-token security scheme (OpenAPI) and the
// error replies it may send, each an ErrorReply ({error, message}).
import { ErrorReply } from './schemas.js';

export const ADMIN_SECURITY = [{ adminToken: [] }];

export const ADMIN_ERRORS = {
  400: ErrorReply,
  401: ErrorReply,
  403: ErrorReply,
  404: ErrorReply,
  409: ErrorReply,
  410: ErrorReply,
  413: ErrorReply,
  429: ErrorReply,
};
