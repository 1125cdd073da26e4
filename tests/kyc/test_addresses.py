import pytest

from kyc.addresses import UnknownNetwork, normalise_address


class TestNormaliseAddress:
    @pytest.mark.parametrize(
        ("network", "address", "expected"),
        [
            (
                "ETH",
                "0x098B716B8Aaf21512996dC57EB0615e2383E2f96",
                ("EVM", "0x098b716b8aaf21512996dc57eb0615e2383e2f96"),
            ),
            (
                "bsc",
                " 0X098b716b8aaf21512996dc57eb0615e2383e2f96 ",
                ("EVM", "0x098b716b8aaf21512996dc57eb0615e2383e2f96"),
            ),
            (
                "USDT",
                "0x098b716b8aaf21512996dc57eb0615e2383e2f96",
                ("EVM", "0x098b716b8aaf21512996dc57eb0615e2383e2f96"),
            ),
            ("BTC", "BC1QSAMPLEADDRESS0000000000000000000000", ("BTC", "bc1qsampleaddress0000000000000000000000")),
            ("XBT", "bc1qsampleaddress0000000000000000000000", ("BTC", "bc1qsampleaddress0000000000000000000000")),
            ("BTC", "bc1qSampleAddress", ("BTC", "bc1qSampleAddress")),  # mixed-case bech32 is invalid: never folded
            ("BTC", "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h", ("BTC", "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h")),
            ("LTC", "ltc1QABC", ("LTC", "ltc1QABC")),
            ("LTC", "LTC1QABC", ("LTC", "ltc1qabc")),
            ("TRX", "TXeXtR5VPYqHvEYJhSiuZMbPgVnFSqvQtz", ("TRX", "TXeXtR5VPYqHvEYJhSiuZMbPgVnFSqvQtz")),
            ("USDT", "TXeXtR5VPYqHvEYJhSiuZMbPgVnFSqvQtz", ("TRX", "TXeXtR5VPYqHvEYJhSiuZMbPgVnFSqvQtz")),
            (
                "BCH",
                "bitcoincash:QPF2CPHC5DKUCLKQUR7LHJ2YUQQ9PK3HMUKLE77VHQ",
                ("BCH", "qpf2cphc5dkuclkqur7lhj2yuqq9pk3hmukle77vhq"),
            ),
            (
                "BCH",
                "qpf2cphc5dkuclkqur7lhj2yuqq9pk3hmukle77vhq",
                ("BCH", "qpf2cphc5dkuclkqur7lhj2yuqq9pk3hmukle77vhq"),
            ),
            ("BCH", "18M8bJWMzWHDBMxoLqjHHAffdRy4SrzkfB", ("BCH", "18M8bJWMzWHDBMxoLqjHHAffdRy4SrzkfB")),
        ],
    )
    def test_uses_each_chains_case_rules(self, network, address, expected):
        assert normalise_address(network, address) == expected

    def test_refuses_an_unknown_network(self):
        with pytest.raises(UnknownNetwork):
            normalise_address("DOGE2", "abc")


class TestSolana:
    def test_solana_addresses_are_screened_case_sensitively(self):
        address = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T"

        assert normalise_address("SOL", address) == ("SOL", address)
        assert normalise_address("SOL", address.lower())[1] != address
