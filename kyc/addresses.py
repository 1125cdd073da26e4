"""Crypto addresses in one comparable form per chain. Pure functions, no ORM.

Networks that share an address space share a chain: an EVM address holds the same funds' key on
Ethereum, BSC, Arbitrum and the rest, so a sanctioned 0x address is sanctioned on all of them.
Case rules follow each format: EVM hex is case-insensitive (EIP-55 case is only a checksum), bech32 and
CashAddr are lower-case by definition, base58 (Bitcoin legacy, Tron, Litecoin legacy, XRP, Monero …) is
case-sensitive and kept exactly as written; so are Solana's base58 public keys.
"""

import re

EVM = "EVM"
_EVM_NETWORKS = {
    "ETH",
    "ETC",
    "BSC",
    "BNB",
    "ARB",
    "ARBITRUM",
    "OP",
    "OPTIMISM",
    "POLYGON",
    "MATIC",
    "AVAX",
    "AVAXC",
    "BASE",
    "ERC20",
    "BEP20",
}
# OFAC tickers and common network names → chain. Tokens (USDT, USDC) live on several chains: see chain_for.
_CHAINS = {
    "XBT": "BTC",
    "BTC": "BTC",
    "LTC": "LTC",
    "BCH": "BCH",
    "BSV": "BSV",
    "BTG": "BTG",
    "DASH": "DASH",
    "ZEC": "ZEC",
    "XMR": "XMR",
    "XRP": "XRP",
    "XVG": "XVG",
    "TRX": "TRX",
    "TRC20": "TRX",
    "TRON": "TRX",
    "SOL": "SOL",
    "OMNI": "BTC",
}
_EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BECH32_PREFIXES = ("bc1", "tb1", "ltc1", "tltc1", "btg1")
_CASHADDR_PREFIXES = ("bitcoincash:", "bchtest:")


class UnknownNetwork(ValueError):
    pass


def chain_for(network: str, address: str) -> str:
    """The chain an address on `network` lives on; for a token ticker, read from the address format."""
    network = network.strip().upper()
    if network in _EVM_NETWORKS:
        return EVM
    if network in _CHAINS:
        return _CHAINS[network]
    if network in ("USDT", "USDC"):
        return _token_chain(address.strip())
    raise UnknownNetwork(f"unknown network {network!r}")


def _token_chain(address: str) -> str:
    if address.lower().startswith("0x"):
        return EVM
    if address.startswith("T"):
        return "TRX"
    return "BTC"  # Omni-layer tokens on Bitcoin addresses


def normalise_address(network: str, address: str) -> tuple[str, str]:
    """(chain, address in the chain's comparable form)."""
    chain = chain_for(network, address)
    return chain, normalise_on_chain(chain, address)


def normalise_on_chain(chain: str, address: str) -> str:
    address = address.strip()
    if chain == EVM:
        return address.lower()
    lowered = address.lower()
    if chain == "BCH" and lowered.startswith(_CASHADDR_PREFIXES):
        return lowered.split(":", 1)[1]
    if chain == "BCH" and lowered[:1] in ("q", "p") and address in (lowered, address.upper()):
        return lowered  # CashAddr without its prefix
    if lowered.startswith(_BECH32_PREFIXES) and address in (lowered, address.upper()):
        return lowered  # bech32 is all one case; mixed case is invalid, so it is left to never match
    return address


def is_evm_address(address: str) -> bool:
    return bool(_EVM_ADDRESS.fullmatch(address.strip()))
