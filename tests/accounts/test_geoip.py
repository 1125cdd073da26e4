import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import geoip
from accounts.models import IpCountryRange


class TestLoadIpCountries:
    def test_loads_cidr_and_range_rows_and_answers_lookups(self, db, tmp_path):
        csv_file = tmp_path / "ranges.csv"
        csv_file.write_text("network,country\n198.51.100.0/24,DE\n2001:db8::/32,NL\n192.0.2.10,192.0.2.20,br\n")

        call_command("load_ip_countries", str(csv_file))

        assert geoip.country_of("198.51.100.255") == "DE"
        assert geoip.country_of("2001:db8::42") == "NL"
        assert geoip.country_of("192.0.2.20") == "BR"
        assert geoip.country_of("192.0.2.21") == ""
        assert geoip.country_of("203.0.113.1") == ""

    @pytest.mark.parametrize("line", ["198.51.100.0/24,Germany", "not-an-ip,DE", "192.0.2.20,192.0.2.10,BR", "x"])
    def test_a_bad_line_fails_the_whole_load_with_its_line_number(self, db, tmp_path, line):
        IpCountryRange.objects.create(first=1, last=2, country="FR")
        csv_file = tmp_path / "ranges.csv"
        csv_file.write_text(f"198.51.100.0/24,DE\n{line}\n")

        with pytest.raises(CommandError, match="line 2"):
            call_command("load_ip_countries", str(csv_file))

        assert list(IpCountryRange.objects.values_list("country", flat=True)) == ["FR"]
