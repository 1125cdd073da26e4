"""Destination addresses, checked per network before anything else. Pure functions, no ORM.

Base58 and Base58Check come from the `base58` package and Keccak-256 (for EIP-55) from pycryptodome.
Bech32 and bech32m are short enough to carry here (BIP-173, BIP-350): the `bech32` package on PyPI
predates bech32m and would accept Taproot addresses with the wrong checksum.
"""

import re

import base58
from Crypto.Hash import keccak


class InvalidAddress(ValueError):
    """The address is not a valid address on the network; the message says why."""


def validate(network: str, address: str) -> str:
    """The address in its canonical form on `network`, or InvalidAddress."""
    check = _VALIDATORS.get(network)
    if check is None:
        raise InvalidAddress(f"addresses on {network} cannot be checked")
    if not address or address != address.strip() or len(address) > 128:
        raise InvalidAddress("empty, padded or too long")
    return check(address)


# ---- bech32 / bech32m ----------------------------------------------------------------------------------
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32, BECH32M = 1, 0x2BC830A3
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, g in enumerate(_GENERATOR):
            chk ^= g if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_decode(text: str) -> tuple[str, list[int], int]:
    """(hrp, data without checksum, BECH32 or BECH32M) of a checksummed string, or InvalidAddress."""
    if text.lower() != text and text.upper() != text:
        raise InvalidAddress("mixed case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text) or len(text) > 90 or any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise InvalidAddress("not a bech32 string")
    if any(c not in _CHARSET for c in text[pos + 1 :]):
        raise InvalidAddress("character outside the bech32 alphabet")
    hrp, data = text[:pos], [_CHARSET.find(c) for c in text[pos + 1 :]]
    constant = _polymod(_hrp_expand(hrp) + data)
    if constant not in (BECH32, BECH32M):
        raise InvalidAddress("bech32 checksum does not match")
    return hrp, data[:-6], constant


def bech32_encode(hrp: str, data: list[int], spec: int) -> str:
    values = _hrp_expand(hrp) + data
    mod = _polymod(values + [0] * 6) ^ spec
    return hrp + "1" + "".join(_CHARSET[d] for d in data + [(mod >> 5 * (5 - i)) & 31 for i in range(6)])


def convert_bits(data, from_bits: int, to_bits: int, *, pad: bool) -> list[int] | None:
    acc, bits, out, maxv = 0, 0, [], (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad and bits:
        out.append((acc << (to_bits - bits)) & maxv)
    elif not pad and (bits >= from_bits or (acc << (to_bits - bits)) & maxv):
        return None
    return out


def segwit_decode(hrp: str, address: str) -> tuple[int, bytes]:
    """(witness version, program) of a segwit address with human-readable part `hrp`, or InvalidAddress."""
    got_hrp, data, spec = bech32_decode(address)
    if got_hrp != hrp or not data:
        raise InvalidAddress(f"expected an address starting {hrp}1")
    version, program = data[0], convert_bits(data[1:], 5, 8, pad=False)
    if program is None or not 2 <= len(program) <= 40 or version > 16:
        raise InvalidAddress("invalid witness program")
    if version == 0 and len(program) not in (20, 32):
        raise InvalidAddress("a version 0 witness program is 20 or 32 bytes")
    # BIP-350: version 0 keeps bech32, every later version uses bech32m.
    if (version == 0) != (spec == BECH32):
        raise InvalidAddress("wrong checksum variant for the witness version (bech32 vs bech32m)")
    return version, bytes(program)


def segwit_encode(hrp: str, version: int, program: bytes) -> str:
    spec = BECH32 if version == 0 else BECH32M
    return bech32_encode(hrp, [version, *convert_bits(program, 8, 5, pad=True)], spec)


# ---- per-network rules ---------------------------------------------------------------------------------
def _base58check(address: str, *, alphabet: bytes = base58.BITCOIN_ALPHABET) -> bytes:
    try:
        return base58.b58decode_check(address, alphabet=alphabet)
    except ValueError:
        raise InvalidAddress("base58check checksum does not match or bad character") from None


def _utxo(hrp: str, versions: set[int]):
    def check(address: str) -> str:
        if address.lower().startswith(hrp + "1"):
            segwit_decode(hrp, address)
            return address.lower()
        payload = _base58check(address)
        if len(payload) != 21 or payload[0] not in versions:
            raise InvalidAddress("not a mainnet pay-to-pubkey-hash or script-hash address")
        return address

    return check


_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def eip55(address: str) -> str:
    """The EIP-55 mixed-case checksum form of a 0x address."""
    body = address[2:].lower()
    digest = keccak.new(digest_bits=256, data=body.encode()).hexdigest()
    return "0x" + "".join(c.upper() if int(h, 16) >= 8 else c for c, h in zip(body, digest[:40], strict=True))


def _ethereum(address: str) -> str:
    if not _HEX_ADDRESS.fullmatch(address):
        raise InvalidAddress("expected 0x and 40 hexadecimal digits")
    body = address[2:]
    # All-lower and all-upper carry no checksum (EIP-55); mixed case must be the checksum exactly.
    if body != body.lower() and body != body.upper() and address != eip55(address):
        raise InvalidAddress("EIP-55 checksum (letter case) does not match")
    return eip55(address)


def _tron(address: str) -> str:
    payload = _base58check(address)
    if len(payload) != 21 or payload[0] != 0x41:
        raise InvalidAddress("a Tron address is 0x41 and 20 bytes (starts with T)")
    return address


def _ripple(address: str) -> str:
    payload = _base58check(address, alphabet=base58.XRP_ALPHABET)
    if len(payload) != 21 or payload[0] != 0x00:
        raise InvalidAddress("not a classic XRP account address (starts with r)")
    return address


def _solana(address: str) -> str:
    try:
        key = base58.b58decode(address)
    except ValueError:
        raise InvalidAddress("bad base58 character") from None
    # Solana addresses are bare 32-byte keys with no checksum; length is all that can be checked.
    if len(key) != 32 or base58.b58encode(key).decode() != address:
        raise InvalidAddress("a Solana address is 32 bytes in base58")
    return address


_VALIDATORS = {
    "BTC": _utxo("bc", {0x00, 0x05}),
    "LTC": _utxo("ltc", {0x30, 0x32, 0x05}),
    "ETH": _ethereum,
    "TRX": _tron,
    "XRP": _ripple,
    "SOL": _solana,
}
NETWORKS = tuple(_VALIDATORS)
