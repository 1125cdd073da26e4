from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("trading_risk", "0006_margin")]

    operations = []
