from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("trading_risk", "0007_position_limits")]

    operations = []
