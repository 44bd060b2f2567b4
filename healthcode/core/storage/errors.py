"""Errors of the storage layer, the operator secrets and the status import.

Codes are stable; messages never hold a document number, a name or a database
password (they may be logged).
"""

from __future__ import annotations

from healthcode.core.errors import HealthcodeError


class StorageError(HealthcodeError):
    """The database cannot do what was asked."""

    code = "storage_error"
    default_en = "The database reported an error."
    default_zh = "数据库出现错误。"


class DatabaseUnavailableError(StorageError):
    """The database cannot be reached (down, wrong host, file not writable).

    Nothing was written: every write runs in a transaction that rolled back.
    """

    code = "database_unavailable"
    default_en = "The database is unavailable; nothing was changed. Try again later."
    default_zh = "数据库暂时无法访问，未做任何更改，请稍后再试。"


class DatabaseURLError(StorageError):
    code = "database_url_invalid"
    default_en = "The database URL is not supported."
    default_zh = "不支持该数据库地址。"


class DatabasePoolSettingError(StorageError):
    """``HEALTHCODE_DB_POOL_SIZE`` or ``HEALTHCODE_DB_MAX_OVERFLOW`` is not a
    whole number from 0 to 1000."""

    code = "database_pool_setting_invalid"
    default_en = (
        "HEALTHCODE_DB_POOL_SIZE and HEALTHCODE_DB_MAX_OVERFLOW must be whole numbers "
        "from 0 to 1000."
    )
    default_zh = "HEALTHCODE_DB_POOL_SIZE 与 HEALTHCODE_DB_MAX_OVERFLOW 须为 0 至 1000 的整数。"


class SchemaOutdatedError(StorageError):
    code = "schema_outdated"
    default_en = "The database schema is out of date; run `healthcode init`."
    default_zh = "数据库结构已过期，请运行 `healthcode init`。"


class SecretsError(HealthcodeError):
    code = "secrets_error"
    default_en = "The operator secrets cannot be used."
    default_zh = "运营方密钥无法使用。"


class SecretsMissingError(SecretsError):
    code = "secrets_missing"
    default_en = "The operator secrets file does not exist; run `healthcode init`."
    default_zh = "运营方密钥文件不存在，请运行 `healthcode init`。"


class SecretsInvalidError(SecretsError):
    code = "secrets_invalid"
    default_en = "The operator secrets file is damaged or not a healthcode secrets file."
    default_zh = "运营方密钥文件已损坏或格式不正确。"


class SecretsInsecureError(SecretsError):
    code = "secrets_insecure"
    default_en = "The operator secrets file is readable by other users; make it 0600."
    default_zh = "运营方密钥文件可被其他用户读取，请将权限设为 0600。"


class SecretsMismatchError(SecretsError):
    """The secrets file is not the one this database was created with: every
    subject key would be different, so nobody would be found."""

    code = "secrets_mismatch"
    default_en = "The operator secrets do not belong to this database."
    default_zh = "运营方密钥与该数据库不匹配。"


class TemplateDecryptionError(SecretsError):
    code = "template_decryption_failed"
    default_en = "A stored face template could not be decrypted."
    default_zh = "无法解密已存储的人脸模板。"


class StatusImportError(HealthcodeError):
    """A status import failed as a whole (the previous data is intact)."""

    code = "import_failed"
    default_en = "The status import failed; the previous data is unchanged."
    default_zh = "状态数据导入失败，原有数据未改变。"


class ImportFormatError(StatusImportError):
    code = "import_format_invalid"
    default_en = "The file is neither CSV with a header nor JSON Lines."
    default_zh = "文件既不是带表头的 CSV，也不是 JSON Lines。"
