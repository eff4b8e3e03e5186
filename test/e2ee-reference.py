#!/usr/bin/env python3
"""Independent reference of docs/protocol.md (participant side), Python standard library only.

Written from the specification, not from the TypeScript: Ed25519 verification (RFC 8032 §6
reference), X25519 (RFC 7748 §5), HKDF-SHA256 (RFC 5869), ChaCha20-Poly1305 (RFC 8439) with
HChaCha20 for XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03), and the Sealroom encoding, list,
heartbeat, wrap, sender-key and security-code rules.

stdin:  {"meetingId", "participantId", "ephemeralSeed": hex, "messages": [wire message, ...]}
stdout: {"securityCode", "leaderId", "listLength", "listHead", "members": {id: senderIndex},
         "sendEpoch", "meetingKeys": {epoch: hex}, "senderKeys": {kid: hex}, "rejected": [reason, ...]}
"""
import base64
import hashlib
import hmac
import json
import struct
import sys

# ---------------------------------------------------------------- encoding (§2)

def field(x):
    if isinstance(x, str):
        b = x.encode('utf-8')
    elif isinstance(x, int):
        b = struct.pack('>Q', x)
    else:
        b = bytes(x)
    return struct.pack('>I', len(b)) + b


def encode(label, *fields):
    return b''.join(field(f) for f in (label,) + fields)


def b64(text, n, at_most=False):
    """Unpadded, canonical base64url of exactly n bytes (or of 0..n bytes with at_most)."""
    if not isinstance(text, str) or any(
            c not in 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_' for c in text):
        raise ValueError('not base64url')
    if len(text) % 4 == 1:
        raise ValueError('non-canonical base64url')
    raw = base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b'=').decode() != text or not (
            len(raw) <= n if at_most else len(raw) == n):
        raise ValueError('non-canonical base64url or wrong length')
    return raw


def b64e(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode()

# ---------------------------------------------------------------- Ed25519 verify (RFC 8032 §6)

P = 2 ** 255 - 19
Q = 2 ** 252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def point_add(a, b):
    A = (a[1] - a[0]) * (b[1] - b[0]) % P
    B = (a[1] + a[0]) * (b[1] + b[0]) % P
    C = 2 * a[3] * b[3] * D % P
    Dd = 2 * a[2] * b[2] % P
    E, F, G, H = B - A, Dd - C, Dd + C, B + A
    return (E * F % P, G * H % P, F * G % P, E * H % P)


def point_mul(s, pt):
    acc = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            acc = point_add(acc, pt)
        pt = point_add(pt, pt)
        s >>= 1
    return acc


def point_equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def decompress(s):
    y = int.from_bytes(s, 'little')
    sign = y >> 255
    y &= (1 << 255) - 1
    x = recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


GY = 4 * pow(5, P - 2, P) % P
G = (recover_x(GY, 0), GY, 1, recover_x(GY, 0) * GY % P)


def ed25519_verify(public, msg, sig):
    if len(public) != 32 or len(sig) != 64:
        return False
    A = decompress(public)
    R = decompress(sig[:32])
    if A is None or R is None:
        return False
    s = int.from_bytes(sig[32:], 'little')
    if s >= Q:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + public + msg).digest(), 'little') % Q
    return point_equal(point_mul(s, G), point_add(R, point_mul(h, A)))


def compress(pt):
    zinv = pow(pt[2], P - 2, P)
    x, y = pt[0] * zinv % P, pt[1] * zinv % P
    return (y | ((x & 1) << 255)).to_bytes(32, 'little')


def ed25519_expand(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], 'little')
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def ed25519_public(seed):
    return compress(point_mul(ed25519_expand(seed)[0], G))


def ed25519_sign(seed, msg):
    a, prefix = ed25519_expand(seed)
    public = compress(point_mul(a, G))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), 'little') % Q
    R = compress(point_mul(r, G))
    h = int.from_bytes(hashlib.sha512(R + public + msg).digest(), 'little') % Q
    return R + ((r + h * a) % Q).to_bytes(32, 'little')

# ---------------------------------------------------------------- X25519 (RFC 7748 §5)

def x25519(k, u):
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, 'little')
    x1 = int.from_bytes(u, 'little') & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        A = x2 + z2
        AA = A * A
        B = x2 - z2
        BB = B * B
        E = AA - BB
        C = x3 + z3
        Dd = x3 - z3
        DA = Dd * A
        CB = C * B
        x3 = (DA + CB) ** 2 % P
        z3 = x1 * (DA - CB) ** 2 % P
        x2 = AA * BB % P
        z2 = E * (AA + 121665 * E) % P
    if swap:
        x2, z2 = x3, z3
    out = (x2 * pow(z2, P - 2, P) % P).to_bytes(32, 'little')
    if out == bytes(32):
        raise ValueError('low-order X25519 key')
    return out


def x25519_public(k):
    return x25519(k, (9).to_bytes(32, 'little'))

# ---------------------------------------------------------------- HKDF, ChaCha20-Poly1305

def hkdf(ikm, info, length=32):
    prk = hmac.new(bytes(32), ikm, hashlib.sha256).digest()  # empty salt = HashLen zeros
    out, block, i = b'', b'', 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def rotl(v, c):
    return ((v << c) & 0xffffffff) | (v >> (32 - c))


def quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 7)


def rounds(s):
    for _ in range(10):
        quarter(s, 0, 4, 8, 12); quarter(s, 1, 5, 9, 13); quarter(s, 2, 6, 10, 14); quarter(s, 3, 7, 11, 15)
        quarter(s, 0, 5, 10, 15); quarter(s, 1, 6, 11, 12); quarter(s, 2, 7, 8, 13); quarter(s, 3, 4, 9, 14)


CONSTANTS = list(struct.unpack('<4I', b'expand 32-byte k'))


def chacha_block(key, counter, nonce12):
    init = CONSTANTS + list(struct.unpack('<8I', key)) + [counter] + list(struct.unpack('<3I', nonce12))
    s = list(init)
    rounds(s)
    return struct.pack('<16I', *((a + b) & 0xffffffff for a, b in zip(s, init)))


def hchacha(key, nonce16):
    s = CONSTANTS + list(struct.unpack('<8I', key)) + list(struct.unpack('<4I', nonce16))
    rounds(s)
    return struct.pack('<8I', *(s[0:4] + s[12:16]))


def poly1305(key, msg):
    r = int.from_bytes(key[:16], 'little') & 0x0ffffffc0ffffffc0ffffffc0fffffff
    s = int.from_bytes(key[16:], 'little')
    acc, p = 0, (1 << 130) - 5
    for i in range(0, len(msg), 16):
        acc = (acc + int.from_bytes(msg[i:i + 16] + b'\x01', 'little')) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, 'little')


def xchacha_open(key, nonce24, box, aad):
    subkey, nonce12 = hchacha(key, nonce24[:16]), bytes(4) + nonce24[16:]
    ct, tag = box[:-16], box[-16:]
    pad = lambda b: b + bytes(-len(b) % 16)
    mac = poly1305(chacha_block(subkey, 0, nonce12)[:32],
                   pad(aad) + pad(ct) + struct.pack('<QQ', len(aad), len(ct)))
    if not hmac.compare_digest(mac, tag):
        raise ValueError('wrapped key does not authenticate')
    stream = b''.join(chacha_block(subkey, 1 + i, nonce12) for i in range((len(ct) + 63) // 64))
    return bytes(a ^ b for a, b in zip(ct, stream))


def xchacha_seal(key, nonce24, plaintext, aad):
    subkey, nonce12 = hchacha(key, nonce24[:16]), bytes(4) + nonce24[16:]
    stream = b''.join(chacha_block(subkey, 1 + i, nonce12) for i in range((len(plaintext) + 63) // 64))
    ct = bytes(a ^ b for a, b in zip(plaintext, stream))
    pad = lambda b: b + bytes(-len(b) % 16)
    mac = poly1305(chacha_block(subkey, 0, nonce12)[:32],
                   pad(aad) + pad(ct) + struct.pack('<QQ', len(aad), len(ct)))
    return ct + mac

# ---------------------------------------------------------------- Sealroom rules (§4–§6)

MAX_EPOCH = 2 ** 47 - 1
MAX_COUNT = 2 ** 53 - 1          # index, time, listLength, fromIndex
MAX_CERTIFICATE = 2048
MAX_ENTRIES_PER_MESSAGE = 32


def integer(x, low, high):
    if not isinstance(x, int) or isinstance(x, bool) or not low <= x <= high:
        raise ValueError(f'integer out of range: {x!r}')
    return x


def binding_statement(meeting_id, participant_id, identity_key, ephemeral_key):
    return encode('sealroom/v1/binding', meeting_id, participant_id, identity_key, ephemeral_key)


def kem_key_ok(ek):
    """FIPS 203 §7.2 modulus check of an ML-KEM-768 encapsulation key (§12.2)."""
    if len(ek) != 1184:
        return False
    for i in range(0, 1152, 3):
        b0, b1, b2 = ek[i], ek[i + 1], ek[i + 2]
        if (b0 | ((b1 & 0x0f) << 8)) >= 3329 or ((b1 >> 4) | (b2 << 4)) >= 3329:
            return False
    return True


def entry_fields(body, version=1):
    """The kind and the body fields of §4.3 (v2: §12.4), in statement order, decoded and range-checked."""
    kind = body['kind']
    if kind == 'create':
        fields = [body['leaderId'], b64(body['leaderIdentityKey'], 32), b64(body['creationNonce'], 32)]
        if 'version' in body:
            if body['version'] != 2 or version != 2:
                raise ValueError('bad create version')
            fields.append(2)
        return kind, fields
    if kind == 'add':
        bd = body['binding']
        keys = [bd['participantId'], b64(bd['identityKey'], 32), b64(bd['ephemeralKey'], 32)]
        if ('kemKey' in bd) != (version == 2) or ('versions' in bd) != (version == 2):
            raise ValueError(f'binding of another version in a v{version} meeting (downgrade)')
        if version == 2:
            versions = bd['versions']
            if not (isinstance(versions, list) and 2 in versions and versions == sorted(set(versions))
                    and all(v in (1, 2) for v in versions)):
                raise ValueError('bad version set')
            keys += [b64(bd['kemKey'], 1184), version_mask(versions)]
        return kind, keys + [b64(bd['signature'], 64), b64(bd['certificate'], MAX_CERTIFICATE, at_most=True),
                             integer(body['senderIndex'], 0, 65535)]
    if kind == 'leave':
        return kind, [body['participantId']]
    if kind == 'leader':
        return kind, [body['newLeaderId'], integer(body['minEpoch'], 1, MAX_EPOCH)]
    if kind in ('lock', 'unlock'):
        return kind, []
    raise ValueError('unknown kind')


def entry_statement(meeting_id, w, version=1):
    kind, fields = entry_fields(w['body'], version)
    label = 'sealroom/v2/list-entry' if version == 2 else 'sealroom/v1/list-entry'
    return encode(label, meeting_id, integer(w['index'], 0, MAX_COUNT), b64(w['prev'], 32),
                  integer(w['time'], 0, MAX_COUNT), w['signer'], kind, *fields)


def entry_hash(statement, signature):
    return hashlib.sha256(encode('sealroom/v1/list-hash', statement, signature)).digest()


def heartbeat_statement(meeting_id, leader_id, epoch, list_length, list_head, time):
    return encode('sealroom/v1/heartbeat', meeting_id, leader_id, epoch, list_length, list_head, time)


def sender_key(meeting_key, meeting_id, creation_nonce, epoch, sender_index):
    return hkdf(meeting_key, encode('sealroom/v1/sender-key', meeting_id, creation_nonce, epoch, sender_index))


def frame_auth_key(shared, meeting_id, creation_nonce, sender_index, receiver_index):
    return hkdf(shared, encode('sealroom/v1/frame-auth', meeting_id, creation_nonce, sender_index, receiver_index))


def security_code(meeting_id, leader_key, nonce):
    digits, block = '', 0
    while len(digits) < 40:
        for b in hashlib.sha256(encode('sealroom/v1/security-code', meeting_id, leader_key, nonce, block)).digest():
            if b < 250 and len(digits) < 40:
                digits += str(b % 10)
        block += 1
    return ' '.join(digits[i:i + 5] for i in range(0, 40, 5))


class Participant:
    def __init__(self, meeting_id, participant_id, ephemeral_seed, min_version=1, kem_secrets=None):
        self.meeting, self.me = meeting_id, participant_id
        # v2: ML-KEM decapsulation is not in Python's standard library; the caller gives this
        # participant's decapsulations (ciphertext base64url → shared secret hex) as an oracle.
        self.version, self.min_version, self.kem_secrets = 0, min_version, kem_secrets or {}
        self.eph_priv = ephemeral_seed
        self.eph_pub = x25519_public(ephemeral_seed)
        self.entries, self.head = [], bytes(32)   # entries: (statement, signature) per index
        self.members, self.leader, self.leader_key = {}, None, None
        self.nonce, self.locked, self.next_index, self.last_time = None, False, 0, 0
        self.keys, self.highest, self.send_epoch, self.pending, self.hb_time = {}, 0, 0, 0, None
        self.pending_hb, self.rejected, self.floor = None, [], 0

    def handle(self, m):
        try:
            if m.get('v') not in (1, 2) or m['meetingId'] != self.meeting:
                raise ValueError('wrong meeting or version')
            getattr(self, 'on_' + m['type'].split('.')[1])(m)
        except (ValueError, KeyError, AttributeError, TypeError) as e:
            self.rejected.append(f"{m.get('type')}: {e}")

    def on_list(self, m):
        if not 1 <= len(m['entries']) <= MAX_ENTRIES_PER_MESSAGE:
            raise ValueError('1 to 32 entries per list message')
        for w in m['entries']:
            if integer(w['index'], 0, MAX_COUNT) < len(self.entries):
                # A re-sent entry: same canonical statement and signature as the verified one (§4.3).
                if self.entries[w['index']] != (entry_statement(self.meeting, w, self.version),
                                                b64(w['signature'], 64)):
                    raise ValueError('entry differs from the verified one')
                continue
            self.apply(w)
        if self.pending_hb and self.pending_hb['listLength'] <= len(self.entries):
            hb, self.pending_hb = self.pending_hb, None
            self.on_heartbeat(hb)

    def apply(self, w):
        body = w['body']
        # The meeting's version comes from its create entry (§12.4), never from the envelope.
        version = (2 if 'version' in body else 1) if body['kind'] == 'create' else self.version
        kind, fields = entry_fields(body, version)
        statement, sig = entry_statement(self.meeting, w, version), b64(w['signature'], 64)
        if w['index'] != len(self.entries) or b64(w['prev'], 32) != self.head:
            raise ValueError('chain broken')
        if w['time'] < self.last_time:
            raise ValueError('time goes backwards')
        if (kind == 'create') != (w['index'] == 0):
            raise ValueError('create only at index 0')
        signer, key = (fields[0], fields[1]) if kind == 'create' else (self.leader, self.leader_key)
        if w['signer'] != signer or not ed25519_verify(key, statement, sig):
            raise ValueError('entry not signed by the leader')
        if kind == 'create':
            if version < self.min_version:
                raise ValueError(f'downgrade: a v{version} meeting, v{self.min_version} required')
            self.leader, self.leader_key, self.nonce = fields[:3]
            self.version = version
        elif kind == 'add':
            if version == 2:
                pid, ik, ek, kem_key, mask, bsig, cert, index = fields
                bst = encode('sealroom/v2/binding', self.meeting, pid, ik, ek, kem_key, mask)
                if not kem_key_ok(kem_key):
                    raise ValueError('invalid ML-KEM key')
            else:
                pid, ik, ek, bsig, cert, index = fields
                bst = binding_statement(self.meeting, pid, ik, ek)
            if not ed25519_verify(ik, bst, bsig):
                raise ValueError('binding does not verify')
            x25519(bytes([9] + [0] * 31), ek)  # low-order ephemeral keys are refused
            if len(self.entries) == 1 and (pid != self.leader or ik != self.leader_key or index != 0):
                raise ValueError('entry 1 must add the leader with sender index 0')
            if self.locked or pid in self.members or index < self.next_index:
                raise ValueError('add not allowed')
            self.members[pid] = {'identity': ik, 'ephemeral': ek, 'index': index, 'certificate': cert}
            self.next_index = index + 1
        elif kind == 'leave':
            if fields[0] not in self.members or fields[0] == self.leader:
                raise ValueError('leave not allowed')
            del self.members[fields[0]]
        elif kind in ('lock', 'unlock'):
            if self.locked == (kind == 'lock'):
                raise ValueError('lock state')
            self.locked = kind == 'lock'
        elif kind == 'leader':
            if fields[0] not in self.members or fields[0] == self.leader or fields[1] < self.floor:
                raise ValueError('bad new leader')
            self.floor = fields[1]
            self.leader, self.leader_key = fields[0], self.members[fields[0]]['identity']
        self.entries.append((statement, sig))
        self.last_time = w['time']
        self.head = entry_hash(statement, sig)

    def on_key(self, m):
        if m['to'] != self.me or m['from'] != self.leader or self.me not in self.members:
            raise ValueError('key not for us or not from the leader')
        epoch = integer(m['epoch'], 1, MAX_EPOCH)
        if epoch <= self.highest:
            raise ValueError('non-increasing epoch')
        l_pub = self.members[self.leader]['ephemeral']
        shared = x25519(self.eph_priv, l_pub)
        labels = 'sealroom/v1/'
        if self.version == 2:  # §12.3: the hybrid secret; never X25519 alone
            if 'kemCiphertext' not in m:
                raise ValueError('downgrade: no ML-KEM ciphertext in a v2 meeting')
            ct = b64(m['kemCiphertext'], 1088)
            # An unknown ciphertext (changed by the relay) decapsulates to an unrelated secret.
            ss_kem = bytes.fromhex(self.kem_secrets.get(m['kemCiphertext'], '00' * 32))
            shared = wrap_secret_v2(ss_kem, shared, ct, l_pub, self.eph_pub)
            labels = 'sealroom/v2/'
        elif 'kemCiphertext' in m:
            raise ValueError('ML-KEM ciphertext in a v1 meeting')
        wrap_key = hkdf(shared, encode(labels + 'wrap-key', self.meeting, self.leader, self.me, l_pub,
                                       self.eph_pub, epoch))
        aad = encode(labels + 'wrap-aad', self.meeting, self.leader, self.me, epoch)
        self.keys[epoch] = xchacha_open(wrap_key, b64(m['nonce'], 24), b64(m['ciphertext'], 48), aad)
        self.highest = epoch
        if self.pending == epoch:
            self.send_epoch = epoch

    def on_heartbeat(self, m):
        epoch, length = integer(m['epoch'], 1, MAX_EPOCH), integer(m['listLength'], 0, MAX_COUNT)
        time, head = integer(m['time'], 0, MAX_COUNT), b64(m['listHead'], 32)
        statement = heartbeat_statement(self.meeting, m['from'], epoch, length, head, time)
        signed = m['from'] == self.leader and ed25519_verify(self.leader_key, statement, b64(m['signature'], 64))
        if length > len(self.entries):
            if not signed:  # only the current leader's ahead heartbeat is parked (§4.4)
                raise ValueError('ahead heartbeat not signed by the current leader')
            self.pending_hb = m
            return
        if length < len(self.entries):
            return
        if not signed or head != self.head:
            raise ValueError('heartbeat does not verify')
        if (self.hb_time is not None and time <= self.hb_time) or epoch < self.send_epoch:
            raise ValueError('stale heartbeat')
        self.hb_time = time
        if epoch in self.keys:
            self.send_epoch = epoch
        else:
            self.pending = max(self.pending, epoch)

    def on_ack(self, m):
        raise ValueError('participants do not handle acks')

    on_binding = on_ack

    def result(self):
        e = self.send_epoch
        sender_keys, frame_auth = {}, {}
        me = self.members.get(self.me)
        if e in self.keys:
            for member in self.members.values():
                kid = (e << 16) | member['index']
                sender_keys[str(kid)] = sender_key(self.keys[e], self.meeting, self.nonce, e, member['index']).hex()
        if me:
            for pid, member in self.members.items():
                if pid != self.me:
                    shared = x25519(self.eph_priv, member['ephemeral'])
                    frame_auth[str(member['index'])] = {
                        'send': frame_auth_key(shared, self.meeting, self.nonce, me['index'], member['index']).hex(),
                        'receive': frame_auth_key(shared, self.meeting, self.nonce, member['index'], me['index']).hex(),
                    }
        return {
            'securityCode': security_code(self.meeting, self.leader_key, self.nonce) if self.nonce else None,
            'leaderId': self.leader,
            'listLength': len(self.entries),
            'listHead': self.head.hex(),
            'members': {pid: mm['index'] for pid, mm in self.members.items()},
            'certificates': {pid: b64e(mm['certificate']) for pid, mm in self.members.items()},
            'sendEpoch': e,
            'meetingKeys': {str(k): v.hex() for k, v in self.keys.items()},
            'senderKeys': sender_keys,
            'frameAuth': frame_auth,
            'version': self.version,
            'rejected': self.rejected,
        }

# ---------------------------------------------------------------- known answers (§11)

RFC8032_SEED_1 = bytes.fromhex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60')
RFC8032_SEED_2 = bytes.fromhex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb')
RFC7748_ALICE = bytes.fromhex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')
RFC7748_BOB = bytes.fromhex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb')
KAT_MEETING = 'meeting-kat'
KAT_MEETING_KEY = bytes(range(32))
KAT_NONCE = bytes(range(32, 64))
KAT_TIME = 1_700_000_000_000
KAT_CERTIFICATES = {'leader': bytes.fromhex('3003020101'), 'bob': bytes.fromhex('3003020102')}


def known_answers():
    """Every known answer of docs/protocol.md §11, from the seeds above and this file's primitives."""
    ids = {'leader': (RFC8032_SEED_1, RFC7748_ALICE), 'bob': (RFC8032_SEED_2, RFC7748_BOB)}
    pub = {p: (ed25519_public(i), x25519_public(e)) for p, (i, e) in ids.items()}
    bindings = {}
    for p, (ik, ek) in pub.items():
        st = binding_statement(KAT_MEETING, p, ik, ek)
        bindings[p] = {'statement': st.hex(), 'signature': ed25519_sign(ids[p][0], st).hex()}

    def wire_binding(p):
        return {'participantId': p, 'identityKey': b64e(pub[p][0]), 'ephemeralKey': b64e(pub[p][1]),
                'signature': b64e(bytes.fromhex(bindings[p]['signature'])),
                'certificate': b64e(KAT_CERTIFICATES[p])}

    bodies = [
        (KAT_TIME, {'kind': 'create', 'leaderId': 'leader', 'leaderIdentityKey': b64e(pub['leader'][0]),
                    'creationNonce': b64e(KAT_NONCE)}),
        (KAT_TIME, {'kind': 'add', 'binding': wire_binding('leader'), 'senderIndex': 0}),
        (KAT_TIME + 1000, {'kind': 'add', 'binding': wire_binding('bob'), 'senderIndex': 1}),
        (KAT_TIME + 2000, {'kind': 'leave', 'participantId': 'bob'}),
    ]
    chain, wire, prev = [], [], bytes(32)
    for index, (time, body) in enumerate(bodies):
        w = {'index': index, 'prev': b64e(prev), 'time': time, 'signer': 'leader', 'body': body}
        st = entry_statement(KAT_MEETING, w)
        sig = ed25519_sign(RFC8032_SEED_1, st)
        w['signature'] = b64e(sig)
        prev = entry_hash(st, sig)
        chain.append({'kind': body['kind'], 'statement': st.hex(), 'signature': sig.hex(), 'hash': prev.hex()})
        wire.append(w)
    hb_fields = ('leader', 2, len(chain), prev, KAT_TIME + 2500)
    hb_st = heartbeat_statement(KAT_MEETING, *hb_fields)
    hb_sig = ed25519_sign(RFC8032_SEED_1, hb_st)

    # The reference participant must accept its own chain and heartbeat (the rules, not only the bytes).
    check = Participant(KAT_MEETING, 'bob', RFC7748_BOB)
    check.handle({'v': 1, 'type': 'e2ee.list', 'meetingId': KAT_MEETING, 'from': 'leader', 'entries': wire})
    check.handle({'v': 1, 'type': 'e2ee.heartbeat', 'meetingId': KAT_MEETING, 'from': 'leader', 'epoch': 2,
                  'listLength': len(chain), 'listHead': b64e(prev), 'time': KAT_TIME + 2500,
                  'signature': b64e(hb_sig)})
    assert check.rejected == [] and check.head == prev and check.hb_time == KAT_TIME + 2500, check.rejected

    shared = x25519(RFC7748_ALICE, pub['bob'][1])
    wrap_info = encode('sealroom/v1/wrap-key', KAT_MEETING, 'leader', 'bob', pub['leader'][1], pub['bob'][1], 5)
    wrap_key = hkdf(shared, wrap_info)
    wrapped = xchacha_seal(wrap_key, bytes([0x24] * 24), KAT_MEETING_KEY,
                           encode('sealroom/v1/wrap-aad', KAT_MEETING, 'leader', 'bob', 5))
    return {
        'identityKeys': {p: v[0].hex() for p, v in pub.items()},
        'ephemeralKeys': {p: v[1].hex() for p, v in pub.items()},
        'certificates': {p: c.hex() for p, c in KAT_CERTIFICATES.items()},
        'canonicalExample': encode('sealroom/v1/example', 'm', 1, bytes([0xab])).hex(),
        'bindings': bindings,
        'chain': chain,
        'chainWire': wire,
        'heartbeat': {'statement': hb_st.hex(), 'signature': hb_sig.hex()},
        'chainSecurityCode': security_code(KAT_MEETING, pub['leader'][0], KAT_NONCE).replace(' ', ''),
        'securityCode': security_code(KAT_MEETING, pub['leader'][0], KAT_MEETING_KEY).replace(' ', ''),
        'senderKey': sender_key(KAT_MEETING_KEY, KAT_MEETING, KAT_NONCE, 7, 3).hex(),
        'sharedSecret': shared.hex(),
        'frameAuth': {'0to1': frame_auth_key(shared, KAT_MEETING, KAT_NONCE, 0, 1).hex(),
                      '1to0': frame_auth_key(shared, KAT_MEETING, KAT_NONCE, 1, 0).hex()},
        'wrapKey': wrap_key.hex(),
        'wrappedKey': wrapped.hex(),
    }


# ---------------------------------------------------------------- protocol v2 (§12), known answers only
# Python's standard library has no ML-KEM: the caller passes the ML-KEM-768 outputs (keys, ciphertext,
# shared secret, from @noble/post-quantum); everything else of §12 is computed here from the document.

def version_mask(versions):
    return sum(1 << v for v in versions)


def binding_statement_v2(meeting_id, participant_id, identity_key, ephemeral_key, kem_key, versions):
    return encode('sealroom/v2/binding', meeting_id, participant_id, identity_key, ephemeral_key, kem_key,
                  version_mask(versions))


def entry_statement_v2(meeting_id, index, prev, time, signer, kind, fields):
    return encode('sealroom/v2/list-entry', meeting_id, index, prev, time, signer, kind, *fields)


def wrap_secret_v2(ss_kem, ss_x25519, kem_ciphertext, leader_eph, member_eph):
    return hashlib.sha3_256(encode('sealroom/v2/wrap-secret', ss_kem, ss_x25519, kem_ciphertext, leader_eph,
                                   member_eph)).digest()


def known_answers_v2(kem):
    """§12.6 from the ML-KEM values in `kem` (hex): leaderKey, bobKey, ciphertext, sharedSecret."""
    sha = lambda b: hashlib.sha256(b).hexdigest()
    kem_keys = {'leader': bytes.fromhex(kem['leaderKey']), 'bob': bytes.fromhex(kem['bobKey'])}
    ids = {'leader': (RFC8032_SEED_1, RFC7748_ALICE), 'bob': (RFC8032_SEED_2, RFC7748_BOB)}
    pub = {p: (ed25519_public(i), x25519_public(e)) for p, (i, e) in ids.items()}
    bindings, signatures = {}, {}
    for p, (ik, ek) in pub.items():
        st = binding_statement_v2(KAT_MEETING, p, ik, ek, kem_keys[p], [2])
        signatures[p] = ed25519_sign(ids[p][0], st)
        bindings[p] = {'statementSha256': sha(st), 'signature': signatures[p].hex()}

    def add_fields(p, sender_index):
        return [p, pub[p][0], pub[p][1], kem_keys[p], version_mask([2]), signatures[p], KAT_CERTIFICATES[p],
                sender_index]

    entries = [(KAT_TIME, 'create', ['leader', pub['leader'][0], KAT_NONCE, 2]),
               (KAT_TIME, 'add', add_fields('leader', 0)),
               (KAT_TIME + 1000, 'add', add_fields('bob', 1))]
    chain, prev = [], bytes(32)
    for index, (time, kind, fields) in enumerate(entries):
        st = entry_statement_v2(KAT_MEETING, index, prev, time, 'leader', kind, fields)
        sig = ed25519_sign(RFC8032_SEED_1, st)
        prev = entry_hash(st, sig)
        shown = {'statement': st.hex()} if kind == 'create' else {'statementSha256': sha(st)}
        chain.append({'kind': kind, **shown, 'signature': sig.hex(), 'hash': prev.hex()})
    ciphertext = bytes.fromhex(kem['ciphertext'])
    secret = wrap_secret_v2(bytes.fromhex(kem['sharedSecret']), x25519(RFC7748_ALICE, pub['bob'][1]), ciphertext,
                            pub['leader'][1], pub['bob'][1])
    wrap_key = hkdf(secret, encode('sealroom/v2/wrap-key', KAT_MEETING, 'leader', 'bob', pub['leader'][1],
                                   pub['bob'][1], 5))
    wrapped = xchacha_seal(wrap_key, bytes([0x24] * 24), KAT_MEETING_KEY,
                           encode('sealroom/v2/wrap-aad', KAT_MEETING, 'leader', 'bob', 5))
    return {
        'kem': {'leaderKeySha256': sha(kem_keys['leader']), 'bobKeySha256': sha(kem_keys['bob']),
                'ciphertextSha256': sha(ciphertext), 'sharedSecret': kem['sharedSecret']},
        'bindings': bindings,
        'chain': chain,
        'wrapSecret': secret.hex(),
        'wrapKey': wrap_key.hex(),
        'wrappedKey': wrapped.hex(),
    }


def main():
    if sys.argv[1:] == ['--kat']:
        json.dump(known_answers(), sys.stdout, indent=1)
        return
    if sys.argv[1:] == ['--kat-v2']:
        json.dump(known_answers_v2(json.load(sys.stdin)), sys.stdout, indent=1)
        return
    request = json.load(sys.stdin)
    p = Participant(request['meetingId'], request['participantId'], bytes.fromhex(request['ephemeralSeed']),
                    request.get('minVersion', 1), request.get('kemSecrets'))
    for message in request['messages']:
        p.handle(message)
    json.dump(p.result(), sys.stdout)


if __name__ == '__main__':
    main()
