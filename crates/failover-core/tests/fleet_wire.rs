//! The round script's wire format (`failover_core::fleet::wire`) against the store's model: an
//! emulation of `round.lua` that reads the encoded arguments exactly as the script walks them,
//! applies them to `failover_testkit::fleet::MemStore`, and renders the snapshot as the script's
//! reply (arrays, integer replies and bulk strings). Routers run on a clock of their own (small
//! numbers, as a monotonic clock is), so every time and grid index goes through the `Clock`.
//! A counting allocator checks that encoding and decoding allocate nothing themselves.

use failover_core::fleet::wire::{Arg, Clock, HeartbeatKey, KeyPrefix, Reply, Wire, WireError};
use failover_core::fleet::{
    BucketCounts, Export, Fleet, FleetConfig, ProviderExport, Register, SYNC_BUCKETS, Snapshot,
};
use failover_core::{CircuitState, Outcome, Policy, Router};
use failover_testkit::alloc::{Counting, arm, assert_counting};
use failover_testkit::fleet::MemStore;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations on this thread while `f` runs.
fn allocations(f: impl FnOnce()) -> u64 {
    let armed = arm();
    f();
    armed.finish()
}

/// A reply over borrowed, pre-built values (so walking it allocates nothing).
#[derive(Clone, Copy)]
struct Borrowed<'a>(&'a V);

impl Reply for Borrowed<'_> {
    fn array_len(&self) -> Option<usize> {
        self.0.array_len()
    }
    fn item(&self, i: usize) -> Option<Self> {
        match self.0 {
            V::Arr(a) => a.get(i).map(Borrowed),
            _ => None,
        }
    }
    fn integer(&self) -> Option<i64> {
        self.0.integer()
    }
    fn with_bytes<T>(&self, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        self.0.with_bytes(f)
    }
}

const P: usize = 4;
type R = Router<P, 60, 64>;

/// A reply value as a Redis client gives it.
#[derive(Clone, Debug, PartialEq)]
enum V {
    Arr(Vec<V>),
    Int(i64),
    Bulk(Vec<u8>),
}

impl Reply for V {
    fn array_len(&self) -> Option<usize> {
        match self {
            V::Arr(a) => Some(a.len()),
            _ => None,
        }
    }
    fn item(&self, i: usize) -> Option<Self> {
        match self {
            V::Arr(a) => a.get(i).cloned(),
            _ => None,
        }
    }
    fn integer(&self) -> Option<i64> {
        match self {
            V::Int(n) => Some(*n),
            _ => None,
        }
    }
    fn with_bytes<T>(&self, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        match self {
            V::Bulk(b) => Some(f(b)),
            _ => None,
        }
    }
}

fn bulk(s: impl ToString) -> V {
    V::Bulk(s.to_string().into_bytes())
}

fn encode(wire: &Wire, names: &[&str], e: &Export<P>) -> Vec<String> {
    let prefix = KeyPrefix("svc").to_string();
    let mut args = Vec::new();
    wire.encode(&prefix, names, e, |a: Arg<'_>| args.push(a.to_string()));
    args
}

/// What `round.lua` reads from its arguments, as an export in store units (plus the provider
/// names, the prefix and the TTLs it would set).
struct Decoded {
    prefix: String,
    export: Box<Export<P>>,
    names: Vec<String>,
    lease_ms: u64,
    ttls: [u64; 4],
}

fn parse_args(a: &[String]) -> Decoded {
    let n = |i: usize| -> u64 {
        a[i].parse()
            .unwrap_or_else(|_| panic!("arg {i}: {:?}", a[i]))
    };
    let mut e: Box<Export<P>> = Box::default();
    e.instance = n(1) as u32;
    e.at_ms = n(2);
    e.live_since_ms = n(3);
    e.read_from = n(4);
    e.read_to = n(5);
    let lease_ms = n(6);
    let ttls = [n(7), n(8), n(9), n(10)];
    e.len = n(11) as usize;
    let mut names = Vec::new();
    let mut i = 12;
    for p in 0..e.len {
        names.push(a[i].clone());
        let nd = n(i + 1) as usize;
        i += 2;
        let mut pe = ProviderExport::EMPTY;
        for _ in 0..nd {
            let mut b = BucketCounts {
                stamp: n(i),
                ..BucketCounts::ZERO
            };
            let nf = n(i + 1) as usize;
            i += 2;
            for _ in 0..nf {
                let v = n(i + 1) as u32;
                assert!(v > 0, "only non-zero fields are sent");
                set(&mut b, &a[i], v);
                i += 2;
            }
            pe.buckets[pe.len] = b;
            pe.len += 1;
        }
        if a[i] == "1" {
            pe.register = Some(Register {
                epoch: n(i + 1),
                open_until_ms: n(i + 2),
                ramp_start_ms: n(i + 3),
            });
        } else {
            assert_eq!(&a[i..i + 4], ["0", "0", "0", "0"]);
        }
        pe.vote = Some(n(i + 4)).filter(|&v| v != 0);
        pe.want_lease = match a[i + 5].as_str() {
            "1" => true,
            "0" => false,
            w => panic!("want_lease {w:?}"),
        };
        i += 6;
        e.providers[p] = pe;
    }
    assert_eq!(i, a.len(), "every argument read");
    Decoded {
        prefix: a[0].clone(),
        export: e,
        names,
        lease_ms,
        ttls,
    }
}

fn set(b: &mut BucketCounts, field: &str, v: u32) {
    let c = &mut b.counts;
    match field {
        "success" => c.success = v,
        "slow" => c.slow = v,
        "rate_limited" => c.rate_limited = v,
        "server_error" => c.server_error = v,
        "connection_error" => c.connection_error = v,
        "timeout" => c.timeout = v,
        "client_error" => c.client_error = v,
        h => b.hist[h.strip_prefix('h').unwrap().parse::<usize>().unwrap()] = v,
    }
}

/// The script's reply for a snapshot in store units, as Redis returns it (`HGETALL` gives the
/// non-zero fields, the register's values are bulk strings, the counts integer replies).
fn render(s: &Snapshot<P>) -> V {
    let mut out = vec![V::Int(i64::from(s.live_instances))];
    for ps in &s.providers[..s.len] {
        let sums = ps.sums[..ps.len]
            .iter()
            .map(|b| {
                let mut kv = Vec::new();
                let c = &b.counts;
                for (f, v) in [
                    ("success", c.success),
                    ("slow", c.slow),
                    ("rate_limited", c.rate_limited),
                    ("server_error", c.server_error),
                    ("connection_error", c.connection_error),
                    ("timeout", c.timeout),
                    ("client_error", c.client_error),
                ] {
                    if v > 0 {
                        kv.extend([bulk(f), bulk(v)]);
                    }
                }
                for (bin, &v) in b.hist.iter().enumerate() {
                    if v > 0 {
                        kv.extend([bulk(format!("h{bin}")), bulk(v)]);
                    }
                }
                V::Arr(vec![bulk(b.stamp), V::Arr(kv)])
            })
            .collect();
        out.push(V::Arr(vec![
            V::Arr(sums),
            bulk(ps.register.epoch),
            bulk(ps.register.open_until_ms),
            bulk(ps.register.ramp_start_ms),
            V::Int(i64::from(ps.voters)),
            ps.lease_holder.map_or(bulk(""), bulk),
        ]));
    }
    V::Arr(out)
}

struct Instance {
    router: Box<R>,
    fleet: Box<Fleet<P, 60>>,
    wire: Wire,
}

const NAMES: [&str; 2] = ["a", "b"];
const WALL0: i64 = 1_764_000_000_000;

fn policy() -> Policy {
    Policy {
        open_jitter: 0.0,
        consecutive_failures: Some(3),
        ..Policy::default()
    }
}

/// Instance `k`: its router's clock starts at `local0` ms when the wall clock reads `WALL0`.
fn instance(k: u32, local0: i64) -> Instance {
    let p = policy();
    let router: Box<R> = Box::new(Router::new(&p, &NAMES).unwrap());
    let config = FleetConfig {
        period_ms: 250,
        ..FleetConfig::default()
    };
    let fleet = Box::new(Fleet::new(config, k, &router).unwrap());
    let wire = Wire::new(&config, p.window_ms, Clock::new(p.bucket_ms, WALL0, local0));
    Instance {
        router,
        fleet,
        wire,
    }
}

/// One round of `inst` at its local time `now` through the wire and the store model.
fn round(inst: &mut Instance, store: &mut MemStore, now: u64) -> bool {
    let mut e: Box<Export<P>> = Box::default();
    let Some(r) = inst.fleet.poll_transmit(&mut inst.router, now, &mut e) else {
        return false;
    };
    let args = encode(&inst.wire, &NAMES, &e);
    let d = parse_args(&args);
    let mut snap: Box<Snapshot<P>> = Box::default();
    store.round(&d.export, d.lease_ms, &mut snap);
    let mut back: Box<Snapshot<P>> = Box::default();
    inst.wire
        .decode(&render(&snap), NAMES.len(), &mut back)
        .unwrap();
    assert!(inst.fleet.handle_snapshot(&mut inst.router, r, &back, now));
    true
}

#[test]
fn an_export_encodes_as_the_script_reads_it_in_store_time() {
    let mut inst = instance(7, 5_000);
    let t = 5_000u64;
    let a = inst.router.provider_at(0).unwrap();
    inst.router.observe(a, Outcome::success(100), t);
    inst.router.observe(a, Outcome::success(3_000), t + 1);
    for k in 0..3 {
        inst.router.observe(a, Outcome::server_error(5), t + 2 + k);
    }
    assert_eq!(inst.router.view(a).unwrap().state, CircuitState::Open);
    let mut e: Box<Export<P>> = Box::default();
    inst.fleet
        .poll_transmit(&mut inst.router, t + 10, &mut e)
        .unwrap();
    let pe = &e.providers[0];
    assert!(pe.len == 1 && pe.register.is_some() && pe.vote == Some(1));
    let d = parse_args(&encode(&inst.wire, &NAMES, &e));
    assert_eq!(d.prefix, "fo:{svc}");
    assert_eq!(HeartbeatKey("svc").to_string(), "fo:{svc}:hb");
    assert_eq!(d.names, NAMES);
    assert_eq!(d.lease_ms, 3000);
    assert_eq!(d.ttls, [2500, 60_000 + 2 * 275, 750, 86_400_000]);
    let shift = WALL0 as u64 - 5_000;
    let x = &d.export;
    assert_eq!((x.instance, x.len), (7, 2));
    assert_eq!(x.at_ms, e.at_ms + shift);
    assert_eq!(x.live_since_ms, e.live_since_ms + shift);
    assert_eq!(x.read_from, e.read_from + shift / 1000);
    assert_eq!(x.read_to, e.read_to + shift / 1000);
    let got = &x.providers[0];
    assert_eq!(got.len, 1);
    let mut want = pe.buckets[0];
    want.stamp += shift / 1000;
    assert_eq!(
        got.buckets[0], want,
        "every non-zero field, histogram included"
    );
    assert_eq!(want.counts.server_error, 3);
    let reg = pe.register.unwrap();
    assert_eq!(
        got.register,
        Some(Register {
            epoch: reg.epoch,
            open_until_ms: reg.open_until_ms + shift,
            ramp_start_ms: 0,
        })
    );
    assert_eq!((got.vote, got.want_lease), (Some(1), false));
    assert_eq!(x.providers[1], ProviderExport::EMPTY);
}

#[test]
fn a_reply_decodes_into_the_snapshot_in_router_time() {
    let clock = Clock::new(1000, WALL0, 5_000);
    let wire = Wire::new(&FleetConfig::default(), 60_000, clock);
    let shift = WALL0 as u64 - 5_000;
    let mut store_snap: Box<Snapshot<P>> = Box::default();
    store_snap.live_instances = 5;
    store_snap.len = 2;
    let mut b = BucketCounts {
        stamp: (WALL0 as u64) / 1000 + 3,
        ..BucketCounts::ZERO
    };
    b.counts.success = 4;
    b.counts.timeout = 70_000;
    b.hist[31] = 2;
    b.hist[0] = 1;
    let p0 = &mut store_snap.providers[0];
    p0.push_sum(b);
    p0.register = Register {
        epoch: 3,
        open_until_ms: WALL0 as u64 + 9_000,
        ramp_start_ms: WALL0 as u64 + 8_000,
    };
    p0.voters = 2;
    p0.lease_holder = Some(4_000_000_000);
    let mut got: Box<Snapshot<P>> = Box::default();
    wire.decode(&render(&store_snap), 2, &mut got).unwrap();
    let mut want = store_snap.clone();
    let w0 = &mut want.providers[0];
    w0.sums[0].stamp -= shift / 1000;
    w0.register.open_until_ms -= shift;
    w0.register.ramp_start_ms -= shift;
    assert_eq!(*got, *want);
    assert_eq!(got.providers[0].sums[0].stamp, 8);
    assert_eq!(
        got.providers[1].register,
        Register::default(),
        "0 stays unset"
    );

    // Integer replies where bulk strings are usual (and the reverse) read the same.
    let mut ints = render(&store_snap);
    if let V::Arr(top) = &mut ints {
        top[0] = bulk(5);
        if let V::Arr(p) = &mut top[1] {
            p[1] = V::Int(3);
            p[4] = bulk(2);
            p[5] = V::Int(4_000_000_000);
        }
    }
    let mut again: Box<Snapshot<P>> = Box::default();
    wire.decode(&ints, 2, &mut again).unwrap();
    assert_eq!(again, got);
}

#[test]
fn a_reply_of_the_wrong_shape_is_an_error() {
    let wire = Wire::new(&FleetConfig::default(), 60_000, Clock::UNIX);
    let mut ok: Box<Snapshot<P>> = Box::default();
    ok.len = 1;
    ok.live_instances = 1;
    let good = render(&ok);
    let mut snap: Box<Snapshot<P>> = Box::default();
    assert_eq!(wire.decode(&good, 1, &mut snap), Ok(()));
    let provider = |f: &dyn Fn(&mut Vec<V>)| {
        let mut r = good.clone();
        if let V::Arr(top) = &mut r
            && let V::Arr(p) = &mut top[1]
        {
            f(p);
        }
        r
    };
    let cases: Vec<(V, &str)> = vec![
        (bulk("OK"), "not an array"),
        (V::Arr(vec![V::Int(1)]), "wrong number of providers"),
        (
            V::Arr(vec![V::Int(-1), V::Arr(vec![])]),
            "a negative integer",
        ),
        (provider(&|p| p.truncate(5)), "a provider has not 6 items"),
        (provider(&|p| p[0] = V::Int(0)), "sums are not an array"),
        (
            provider(&|p| p[0] = V::Arr(vec![V::Arr(vec![bulk(1)])])),
            "a sum has not 2 items",
        ),
        (
            provider(&|p| p[0] = V::Arr(vec![V::Arr(vec![bulk(1), bulk("x")])])),
            "a hash is not an array",
        ),
        (
            provider(&|p| {
                p[0] = V::Arr(vec![V::Arr(vec![
                    bulk(1),
                    V::Arr(vec![V::Int(1), bulk(1)]),
                ])])
            }),
            "a field name is not a bulk string",
        ),
        (
            provider(&|p| p[1] = bulk("1e3")),
            "a count is not a decimal integer",
        ),
        (
            provider(&|p| p[5] = V::Arr(vec![])),
            "a lease holder is not a bulk string",
        ),
    ];
    for (reply, why) in cases {
        assert_eq!(
            wire.decode(&reply, 1, &mut snap),
            Err(WireError(why)),
            "{reply:?}"
        );
    }
    // An unknown field is ignored, not an error (a newer writer may add one).
    let extra = provider(&|p| {
        p[0] = V::Arr(vec![V::Arr(vec![
            bulk(1),
            V::Arr(vec![bulk("teapot"), bulk(1), bulk("success"), bulk(2)]),
        ])])
    });
    assert_eq!(wire.decode(&extra, 1, &mut snap), Ok(()));
    assert_eq!(snap.providers[0].sums[0].counts.success, 2);
}

#[test]
fn instances_on_different_router_clocks_share_through_the_wire() {
    // Three instances whose router clocks started at different times (their shifts differ by
    // whole buckets), one store.
    let mut fleet = [
        instance(1, 5_000),
        instance(2, 123_000),
        instance(3, 40_000_000),
    ];
    let locals = [5_000u64, 123_000, 40_000_000];
    let mut store = MemStore::new();
    let mut wall = 0u64;
    let tick = |fleet: &mut [Instance; 3], store: &mut MemStore, wall: &mut u64| {
        *wall += 250;
        for (inst, l0) in fleet.iter_mut().zip(locals) {
            inst.fleet.sync_now(l0 + *wall);
            assert!(round(inst, store, l0 + *wall));
        }
    };
    for _ in 0..2 {
        tick(&mut fleet, &mut store, &mut wall);
    }
    assert!(fleet.iter().all(|i| i.fleet.live_instances() == 3));
    // Instances 1 and 2 see "a" fail 3 times in a row and open it: a quorum of 3 live.
    let mut recorded = 0;
    for (inst, l0) in fleet.iter_mut().zip(locals).take(2) {
        let a = inst.router.provider_at(0).unwrap();
        inst.router.observe(a, Outcome::success(80), l0 + wall + 1);
        for k in 0..3 {
            inst.router
                .observe(a, Outcome::server_error(5), l0 + wall + 2 + k);
        }
        recorded += 1;
        assert_eq!(inst.router.view(a).unwrap().state, CircuitState::Open);
    }
    for _ in 0..2 {
        tick(&mut fleet, &mut store, &mut wall);
    }
    let third = &fleet[2];
    let a = third.router.provider_at(0).unwrap();
    assert_eq!(third.router.view(a).unwrap().state, CircuitState::Open);
    assert_eq!(third.fleet.register(a).unwrap().epoch, 1);
    // The open-until came back in the third instance's own clock: an open of the policy's
    // length (30 s, no jitter) from about now, not a time near the Unix epoch or far ahead.
    let until = third.router.view(a).unwrap().open_until_ms.unwrap();
    let now3 = locals[2] + wall;
    assert!(until > now3 && until <= now3 + 31_000, "{until} vs {now3}");
    // Counts: the store holds each delta once, on the wall clock's grid.
    let grid = (WALL0 as u64) / 1000;
    let stored: u32 = (grid..grid + 10)
        .filter_map(|g| store.sum(0, g))
        .map(|s| s.counts.success)
        .sum();
    assert_eq!(stored, recorded);
    assert!(store.sum(0, 5).is_none() && store.sum(0, 123).is_none());
}

#[test]
fn encoding_and_decoding_allocate_nothing() {
    let mut inst = instance(2, 9_000);
    let a = inst.router.provider_at(0).unwrap();
    for k in 0..3 {
        inst.router.observe(a, Outcome::server_error(5), 9_000 + k);
    }
    inst.router.observe(a, Outcome::success(700), 9_010);
    let mut e: Box<Export<P>> = Box::default();
    inst.fleet
        .poll_transmit(&mut inst.router, 9_020, &mut e)
        .unwrap();
    let mut store = MemStore::new();
    let mut snap: Box<Snapshot<P>> = Box::default();
    let d = parse_args(&encode(&inst.wire, &NAMES, &e));
    store.round(&d.export, d.lease_ms, &mut snap);
    let reply = render(&snap);
    let mut back: Box<Snapshot<P>> = Box::default();
    let (mut args, mut bytes) = (0, 0);
    assert_counting();
    let n = allocations(|| {
        inst.wire.encode("fo:{svc}", &NAMES, &e, |arg| {
            args += 1;
            bytes += match arg {
                Arg::Str(s) => s.len(),
                Arg::Int(n) => n.checked_ilog10().unwrap_or(0) as usize + 1,
            };
        });
        inst.wire.decode(&Borrowed(&reply), 2, &mut back).unwrap();
    });
    assert_eq!(n, 0, "allocations while encoding and decoding");
    assert!(args > 12 + 2 * 8 && bytes > 0);
    assert_eq!(back.providers[0].register.epoch, 1);
    assert_eq!(back.providers[0].sums[0].counts.server_error, 3);
}

/// The edges of the reply's numbers and of a snapshot's size: a decimal of 20 digits (up to
/// `u64::MAX`) reads, 21 digits never do (not even with leading zeros); a snapshot takes exactly
/// as many providers as it holds, and one more is refused before the reply is read; every sum of
/// a provider is read, up to the snapshot's capacity. A `WireError` says that it is the fleet
/// reply that is wrong.
#[test]
fn decimals_provider_counts_and_sums_at_their_edges() {
    let wire = Wire::new(&FleetConfig::default(), 60_000, Clock::UNIX);
    let mut ok: Box<Snapshot<P>> = Box::default();
    ok.len = 1;
    ok.live_instances = 1;
    let with_epoch = |digits: &str| {
        let mut r = render(&ok);
        if let V::Arr(top) = &mut r
            && let V::Arr(p) = &mut top[1]
        {
            p[1] = bulk(digits);
        }
        r
    };
    let mut snap: Box<Snapshot<P>> = Box::default();
    assert_eq!(
        wire.decode(&with_epoch("18446744073709551615"), 1, &mut snap),
        Ok(())
    );
    assert_eq!(snap.providers[0].register.epoch, u64::MAX);
    assert_eq!(
        wire.decode(&with_epoch("00000000000000000007"), 1, &mut snap),
        Ok(())
    );
    assert_eq!(snap.providers[0].register.epoch, 7);
    for refused in ["000000000000000000007", "18446744073709551616"] {
        assert_eq!(
            wire.decode(&with_epoch(refused), 1, &mut snap),
            Err(WireError("a count is not a decimal integer")),
            "{refused}"
        );
    }

    let mut full: Box<Snapshot<P>> = Box::default();
    full.len = P;
    full.live_instances = 3;
    full.providers[P - 1].voters = 2;
    let reply = render(&full);
    assert_eq!(wire.decode(&reply, P, &mut snap), Ok(()));
    assert_eq!((snap.len, snap.providers[P - 1].voters), (P, 2));
    assert_eq!(
        wire.decode(&reply, P + 1, &mut snap),
        Err(WireError("more providers than a snapshot holds"))
    );

    // Every sum of a provider is read, in order, up to what a snapshot holds; the rest are
    // dropped (not an error).
    let mut many: Box<Snapshot<P>> = Box::default();
    many.len = 1;
    many.live_instances = 1;
    for k in 0..SYNC_BUCKETS as u64 {
        let mut b = BucketCounts {
            stamp: 100 + k,
            ..BucketCounts::ZERO
        };
        b.counts.success = k as u32 + 1;
        assert!(many.providers[0].push_sum(b));
    }
    let mut reply = render(&many);
    assert_eq!(wire.decode(&reply, 1, &mut snap), Ok(()));
    assert_eq!(snap.providers[0], many.providers[0]);
    if let V::Arr(top) = &mut reply
        && let V::Arr(p) = &mut top[1]
        && let V::Arr(sums) = &mut p[0]
    {
        sums.push(V::Arr(vec![
            bulk(999),
            V::Arr(vec![bulk("success"), bulk(9)]),
        ]));
    }
    assert_eq!(wire.decode(&reply, 1, &mut snap), Ok(()));
    assert_eq!(snap.providers[0], many.providers[0], "the 17th is dropped");

    assert_eq!(
        WireError("not an array").to_string(),
        "fleet reply: not an array"
    );
}
