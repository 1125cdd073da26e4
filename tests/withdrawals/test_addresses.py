import base58
import pytest

from withdrawals import addresses
from withdrawals.addresses import BECH32, BECH32M, InvalidAddress


class TestBech32:
    @pytest.mark.parametrize(
        "text",
        [
            "A12UEL5L",
            "a12uel5l",
            "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
            "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        ],
    )
    def test_bip173_strings_decode_as_bech32(self, text):
        assert addresses.bech32_decode(text)[2] == BECH32

    @pytest.mark.parametrize(
        "text",
        [
            "A1LQFN3A",
            "a1lqfn3a",
            "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
            "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
            "?1v759aa",
        ],
    )
    def test_bip350_strings_decode_as_bech32m(self, text):
        assert addresses.bech32_decode(text)[2] == BECH32M

    @pytest.mark.parametrize("text", ["pzry9x0s0muk", "1pzry9x0s0muk", "x1b4n0q5v", "li1dgmt3", "A1G7SGD8", "a12UEL5L"])
    def test_bip173_invalid_strings_are_refused(self, text):
        with pytest.raises(InvalidAddress):
            addresses.bech32_decode(text)


class TestBitcoin:
    @pytest.mark.parametrize(
        "address",
        [
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",  # P2WPKH
            "bc1qeklep85ntjz4605drds6aww9u0qr46qzrv5xswd35uhjuj8ahfcqgf6hak",  # P2WSH
            "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",  # P2TR, bech32m
            "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",  # BIP-173, upper case
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",  # P2PKH
            "342ftSRCvFHfCeFFBuz4xwbeqnDw6BGUey",  # P2SH
        ],
    )
    def test_valid_addresses_pass(self, address):
        assert addresses.validate("BTC", address)

    @pytest.mark.parametrize(
        "address",
        [
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",  # base58check checksum off by one character
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr",  # bech32 checksum broken
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mDq",  # mixed case
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",  # testnet
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "",
        ],
    )
    def test_malformed_addresses_are_refused(self, address):
        with pytest.raises(InvalidAddress):
            addresses.validate("BTC", address)

    def test_taproot_with_a_bech32_checksum_is_refused(self):
        program = bytes(range(32))
        wrong = addresses.bech32_encode("bc", [1, *addresses.convert_bits(program, 8, 5, pad=True)], BECH32)

        with pytest.raises(InvalidAddress, match="variant"):
            addresses.validate("BTC", wrong)

    def test_a_segwit_address_round_trips(self):
        program = bytes(range(20))

        assert addresses.segwit_decode("bc", addresses.segwit_encode("bc", 0, program)) == (0, program)


class TestEthereum:
    @pytest.mark.parametrize(
        "address",
        [  # EIP-55's own examples
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ],
    )
    def test_eip55_checksummed_addresses_pass_unchanged(self, address):
        assert addresses.validate("ETH", address) == address

    def test_all_lower_case_has_no_checksum_and_is_stored_checksummed(self):
        assert addresses.validate("ETH", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed") == (
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        )

    @pytest.mark.parametrize(
        "address",
        [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",
            "0x5aAeb6053F3E94C9",
            "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00",
            "0xZZAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        ],
    )
    def test_wrong_checksum_or_shape_is_refused(self, address):
        with pytest.raises(InvalidAddress):
            addresses.validate("ETH", address)


class TestOtherNetworks:
    def test_tron_base58check_address_passes(self):
        assert addresses.validate("TRX", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")

    def test_tron_address_with_a_broken_checksum_is_refused(self):
        with pytest.raises(InvalidAddress):
            addresses.validate("TRX", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u")

    def test_a_bitcoin_address_is_not_a_tron_address(self):
        with pytest.raises(InvalidAddress):
            addresses.validate("TRX", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2")

    def test_xrp_genesis_account_passes(self):
        assert addresses.validate("XRP", "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh")

    def test_litecoin_legacy_and_segwit_addresses_pass(self):
        legacy = base58.b58encode_check(bytes([0x30]) + bytes(20)).decode()

        assert addresses.validate("LTC", legacy) == legacy
        assert addresses.validate("LTC", addresses.segwit_encode("ltc", 0, bytes(20)))

    def test_solana_needs_32_bytes(self):
        assert addresses.validate("SOL", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
        with pytest.raises(InvalidAddress):
            addresses.validate("SOL", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5D")

    def test_unknown_network_is_refused(self):
        with pytest.raises(InvalidAddress):
            addresses.validate("DOGE", "DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L")
