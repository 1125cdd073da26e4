"""Staff users, the exchange's customers and their trading accounts."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class User(AbstractUser):
    """A staff member. Logs in with a password and a TOTP code; see accounts.staff_auth."""

    totp_secret = models.CharField(max_length=64, blank=True)
    totp_confirmed_at = models.DateTimeField(null=True, blank=True)
    # The last accepted TOTP time step: a code is accepted once, so an observed code cannot be replayed.
    totp_last_step = models.BigIntegerField(default=0)
    failed_login_count = models.PositiveIntegerField(default=0)
    login_locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.get_username()

    @property
    def has_second_factor(self) -> bool:
        return bool(self.totp_secret and self.totp_confirmed_at)


class RecoveryCode(models.Model):
    """A one-time code a staff member can use instead of a TOTP code; stored hashed."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Recovery code #{self.pk} of {self.user_id} ({'used' if self.used_at else 'unused'})"


class Customer(models.Model):
    """The beneficial owner behind one or more trading accounts, as the exchange knows it."""

    class Type(models.TextChoices):
        INDIVIDUAL = "INDIVIDUAL", "Individual"
        CORPORATE = "CORPORATE", "Corporate"
        MARKET_MAKER = "MARKET_MAKER", "Market maker"

    class KycSource(models.TextChoices):
        NONE = "NONE", "Not verified"
        IMPORTED = "IMPORTED", "Imported from the exchange"
        DECIDED = "DECIDED", "Decided in the back office"

    external_id = models.CharField(max_length=64, unique=True, help_text="the exchange's customer_id")
    type = models.CharField(max_length=12, choices=Type)
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    email = models.EmailField(max_length=254)
    phone = models.CharField(max_length=32)
    date_of_birth = models.DateField(null=True, blank=True)
    kyc_level = models.PositiveSmallIntegerField(default=0)
    kyc_level_source = models.CharField(max_length=8, choices=KycSource, default=KycSource.NONE)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kyc_level__lte=3), name="customer_kyc_level_range"),
        ]
        indexes = [models.Index(fields=["name"], name="customer_name_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


class Account(models.Model):
    """A trading account of a customer; one customer may own many."""

    class Kind(models.TextChoices):
        SPOT = "SPOT", "Spot"
        MARGIN = "MARGIN", "Margin"
        FUTURES = "FUTURES", "Futures"

    external_id = models.CharField(max_length=64, unique=True, help_text="the exchange's account_id")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="accounts")
    kind = models.CharField(max_length=8, choices=Kind)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.external_id} ({self.get_kind_display()}, {self.customer.external_id})"
