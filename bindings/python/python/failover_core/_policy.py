"""The policy's fields as typed dicts, for type checkers: ``Router(names, consecutive_failures=3)``
and ``Router(names, {"consecutive_failures": 3})`` are checked field by field, so a misspelt
field or a wrong type is an error before the core's own validation (which stays the rule at run
time). The names are the scenario files' (``failover_core.POLICY_FIELDS``); every default and its
reason is documented on the core's ``Policy``."""

from __future__ import annotations

from typing import List, Literal, Optional, TypedDict


class RampStageSpec(TypedDict):
    """One stage of the recovery ramp: the traffic share and how long it holds."""

    share: float
    dwell_ms: int


OutcomeName = Literal[
    "success",
    "rate_limited",
    "server_error",
    "connection_error",
    "timeout",
    "client_error",
    "cancelled",
    "refused",
    "credentials_rejected",
    "quota_exhausted",
    "stream_cut",
    "stalled",
]


class Policy(TypedDict, total=False):
    """Every policy field, all optional (left out: the core's default)."""

    bucket_ms: int
    window_ms: int
    min_volume: int
    error_rate_threshold: Optional[float]
    consecutive_failures: Optional[int]
    timeout_rate_threshold: Optional[float]
    timeout_sustain_ms: int
    slow_call_ms: int
    slow_call_rate_threshold: Optional[float]
    latency_factor: Optional[float]
    latency_quantile: float
    latency_baseline_ms: int
    count_client_errors: bool
    open_base_ms: int
    open_multiplier: float
    open_max_ms: int
    open_jitter: float
    seed: int
    backoff_decay_ms: int
    probe_mode: Literal["requests", "health_checks"]
    probe_max_in_flight: int
    probe_successes: int
    probe_timeout_ms: int
    health_check_interval_ms: Optional[int]
    ramp: List[RampStageSpec]
    ramp_min_samples: int
    ramp_rollback_threshold: float
    throttle_base_ms: int
    throttle_max_ms: int
    max_retry_after_ms: int
    bench_ms: int
    request_timeout_ms: int
    attempt_timeout_ms: int
    max_wait_ms: int
    same_provider_retries: int
    first_token_timeout_ms: int
    first_token_min_ms: int
    first_token_factor: int
    stream_idle_ms: int
    when_all_down: Literal["soonest", "fail"]
    pace_watermark: Optional[float]
    pace_max_age_ms: int


class PolicyInForce(TypedDict):
    """The policy in force, as ``Router.policy()`` reads it back: every field, defaults included,
    in the core's order (``failover_core.POLICY_FIELDS``), with the type its value has. ``None``
    is a trigger switched off; ``ramp`` is a list of stages. ``Router(names, **router.policy())``
    (or ``Router(names, router.policy())``) builds the same policy. A test holds the keys to the
    core's field list and every value to its annotated type, so this cannot drift from the core."""

    bucket_ms: int
    window_ms: int
    min_volume: int
    error_rate_threshold: Optional[float]
    consecutive_failures: Optional[int]
    timeout_rate_threshold: Optional[float]
    timeout_sustain_ms: int
    slow_call_ms: int
    slow_call_rate_threshold: Optional[float]
    latency_factor: Optional[float]
    latency_quantile: float
    latency_baseline_ms: int
    count_client_errors: bool
    open_base_ms: int
    open_multiplier: float
    open_max_ms: int
    open_jitter: float
    seed: int
    backoff_decay_ms: int
    probe_mode: Literal["requests", "health_checks"]
    probe_max_in_flight: int
    probe_successes: int
    probe_timeout_ms: int
    health_check_interval_ms: Optional[int]
    ramp_min_samples: int
    ramp_rollback_threshold: float
    throttle_base_ms: int
    throttle_max_ms: int
    max_retry_after_ms: int
    bench_ms: int
    request_timeout_ms: int
    attempt_timeout_ms: int
    max_wait_ms: int
    same_provider_retries: int
    first_token_timeout_ms: int
    first_token_min_ms: int
    first_token_factor: int
    stream_idle_ms: int
    when_all_down: Literal["soonest", "fail"]
    pace_watermark: Optional[float]
    pace_max_age_ms: int
    ramp: List[RampStageSpec]
