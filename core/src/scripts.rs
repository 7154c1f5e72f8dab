//! The Lua scripts for the compare-and-act operations, and their SHA1s.
//!
//! Every script reads the key after its last write (`PTTL` is a read), so
//! that tracking stays armed on this connection: tracking is one-shot and our
//! own write clears it. Acquisition needs no script: `SET NX PX` followed by a
//! pipelined `PTTL` does the same with two cheap commands (fenced locks
//! replace that `PTTL` by [`FENCE_READ`]; see `crate::fence`).

/// Extend (relative TTL). `ARGV = [value, ttl_ms, refresh_below_ms]`.
/// When the key still carries `value`, refreshes its TTL to `ttl_ms` if it
/// had less than `refresh_below_ms` left, and returns `{remaining_ttl_ms,
/// refreshed}`; otherwise `{0, 0}`. Not refreshing a nearly full TTL is what
/// keeps the echo of our own `PEXPIRE` (without `NOLOOP`) from looping.
pub(crate) const EXTEND_PX: &str = "if redis.call('GET',KEYS[1])~=ARGV[1] then return {0,0} end \
local t=redis.call('PTTL',KEYS[1]) local w=0 \
if t<tonumber(ARGV[3]) then redis.call('PEXPIRE',KEYS[1],ARGV[2]) redis.call('GET',KEYS[1]) \
t=redis.call('PTTL',KEYS[1]) w=1 end \
if t<0 then t=0 end return {t,w}";

/// Extend (absolute TTL). `ARGV = [value, unix_ms_deadline, refresh_below_ms]`;
/// same reply as [`EXTEND_PX`].
pub(crate) const EXTEND_PXAT: &str = "if redis.call('GET',KEYS[1])~=ARGV[1] then return {0,0} end \
local t=redis.call('PTTL',KEYS[1]) local w=0 \
if t<tonumber(ARGV[3]) then redis.call('PEXPIREAT',KEYS[1],ARGV[2]) redis.call('GET',KEYS[1]) \
t=redis.call('PTTL',KEYS[1]) w=1 end \
if t<0 then t=0 end return {t,w}";

/// Release: delete the key when it still carries `ARGV[1]`. Returns 1 or 0.
/// Byte for byte the script Go's `rueidislock` uses, so both share its cache slot.
pub(crate) const RELEASE: &str =
    "if redis.call(\"GET\",KEYS[1]) == ARGV[1] then return redis.call(\"DEL\",KEYS[1]) else return 0 end";

/// Fenced acquisition's read, in place of the `PTTL` behind `SET NX`.
/// `KEYS = [K, C(K)]`, `ARGV = [value]`. Returns `{PTTL K, counter}`, the
/// counter being `-1` when `K` carries another value, `-2` when `K` is
/// gone (either way not ours), and `0` when the counter does not exist. Reads `K` after the `SET`, so tracking is armed
/// as the `PTTL` armed it. A counter that is not a whole number is an
/// error reply (someone wrote there), never read as 0.
pub(crate) const FENCE_READ: &str = "local t=redis.call('PTTL',KEYS[1]) \
local v=redis.call('GET',KEYS[1]) if v~=ARGV[1] then if v then return {t,-1} end return {t,-2} end \
local f=tonumber(redis.call('GET',KEYS[2]) or '0') \
if not f or f<0 or f~=math.floor(f) then return redis.error_reply('ERR tracklock: fencing counter is not a whole number') end \
return {t,f}";

/// Fenced acquisition's raise. `KEYS = [K, C(K)]`, `ARGV = [value, token]`.
/// Sets the counter to `token` only while `K` carries `value` and the
/// counter is lower. Returns 1 (raised), 0 (the counter was not lower),
/// -1 (`K` carries another value) or -2 (`K` is gone). Reads `K`, which keeps tracking armed.
pub(crate) const FENCE_RAISE: &str =
    "local v=redis.call('GET',KEYS[1]) if v~=ARGV[1] then if v then return -1 end return -2 end \
local f=tonumber(redis.call('GET',KEYS[2]) or '0') \
if not f then return redis.error_reply('ERR tracklock: fencing counter is not a whole number') end \
if f>=tonumber(ARGV[2]) then return 0 end \
redis.call('SET',KEYS[2],ARGV[2]) return 1";

/// A script with its hex SHA1, as `EVALSHA` wants it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Script {
    pub(crate) body: &'static str,
    pub(crate) sha: [u8; 40],
}

impl Script {
    pub(crate) fn new(body: &'static str) -> Self {
        let digest = sha1_smol::Sha1::from(body).digest().bytes();
        let mut sha = [0u8; 40];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in digest.iter().enumerate() {
            sha[2 * i] = HEX[usize::from(b >> 4)];
            sha[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        Script { body, sha }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_of_known_script() {
        // sha1("return 1"), as `SCRIPT LOAD "return 1"` reports it.
        assert_eq!(
            &Script::new("return 1").sha,
            b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }
}
