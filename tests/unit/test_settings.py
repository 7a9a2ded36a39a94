"""Settings: every one documented, secrets never shown."""

from pathlib import Path

from pydantic import SecretStr

from monitor.settings import Settings, settings_reference

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented_with_its_default():
    assert DOCS.read_text(encoding="utf-8") == settings_reference(), (
        "run: python -m monitor.settings > docs/configuration.md"
    )
    for name, field in Settings.model_fields.items():
        assert field.description, f"HM_{name.upper()} has no description"


def test_secrets_are_masked_in_repr_and_dumps(monkeypatch):
    monkeypatch.setenv("HM_CDS_KEY", "very-secret-token")
    settings = Settings(_env_file=None)
    assert isinstance(settings.cds_key, SecretStr)
    assert "very-secret-token" not in repr(settings)
    assert "very-secret-token" not in settings.model_dump_json()
