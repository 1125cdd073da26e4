from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Report",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("LARGE_TRADER", "Large-trader report")], max_length=20)),
                ("day", models.DateField()),
                ("version", models.PositiveIntegerField()),
                ("rows_count", models.PositiveIntegerField()),
                ("threshold_btc", models.DecimalField(decimal_places=18, max_digits=38)),
                ("valued_at", models.DateTimeField(help_text="reference prices at or before this time value the positions")),
                ("generated_at", models.DateTimeField()),
                ("generated_by", models.CharField(max_length=150)),
                ("csv_content", models.TextField()),
                ("xlsx_content", models.BinaryField()),
            ],
            options={
                "ordering": ["-day", "kind", "-version"],
                "permissions": [("generate_report", "Can generate and regenerate reports")],
                "constraints": [
                    models.UniqueConstraint(fields=("kind", "day", "version"), name="report_version_unique"),
                    models.CheckConstraint(condition=models.Q(("version__gte", 1)), name="report_version_positive"),
                ],
            },
        ),
    ]
