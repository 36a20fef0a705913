// ES module entry point: the same objects as `require('failover-core')`.
import cjs from './index.js';

export const {
  Router,
  Ticket,
  FailoverError,
  ConfigError,
  UnavailableError,
  InternalError,
  HttpStatusError,
  AllProvidersFailedError,
  StreamBrokenError,
  classify,
  classifyError,
  classifyHttp,
  classifyResponse,
  classifyStatus,
  parseRetryAfter,
  monotonicNowMs,
  OUTCOME_KINDS,
} = cjs;

export default cjs;
