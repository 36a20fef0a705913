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
  ProviderStreamError,
  classify,
  classifyError,
  classifyHttp,
  classifyResponse,
  classifyStatus,
  parseRetryAfter,
  chunkKind,
  monotonicNowMs,
  OUTCOME_KINDS,
} = cjs;

export default cjs;
