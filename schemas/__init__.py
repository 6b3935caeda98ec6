"""The contract catalog of Lintas: event schemas, their models and the Avro wire format.

One ``.avsc`` per event type under ``catalog/<opd>/<event>.v<major>.avsc`` is the source of
truth; everything here is derived from it::

    from lintas.schemas import load_catalog, model_for, to_avro_dict, encode, decode

    kematian = load_catalog().get("dukcapil.kematian_dicatat.v1")
    event = model_for(kematian).model_validate(payload)
    value = encode(schema_id, kematian.parsed_schema, to_avro_dict(event))
    record = decode(value, kematian.parsed_schema)
"""

from .catalog import PII_KINDS, Catalog, EventType, load_catalog
from .examples import build_nik, example_event
from .exceptions import (
    CatalogError,
    DeserializationError,
    InvalidSchema,
    SchemaError,
    SchemaNotFound,
    SerializationError,
    UnknownEventType,
    UnknownSchemaId,
)
from .models import (
    AvroRecord,
    EventModel,
    FieldError,
    field_errors,
    from_avro_dict,
    model_for,
    to_avro_dict,
)
from .serde import (
    HEADER_SIZE,
    MAGIC_BYTE,
    AvroDeserializer,
    AvroSerializer,
    SchemaResolver,
    decode,
    encode,
    parse_header,
    parse_schema,
)

# Grouped by concern, as in aiokafka/__init__.py.
__all__ = [
    # catalog
    "Catalog",
    "EventType",
    "PII_KINDS",
    "load_catalog",
    # models
    "AvroRecord",
    "EventModel",
    "FieldError",
    "field_errors",
    "from_avro_dict",
    "model_for",
    "to_avro_dict",
    # wire format
    "HEADER_SIZE",
    "MAGIC_BYTE",
    "AvroDeserializer",
    "AvroSerializer",
    "SchemaResolver",
    "decode",
    "encode",
    "parse_header",
    "parse_schema",
    # examples
    "build_nik",
    "example_event",
    # errors
    "CatalogError",
    "DeserializationError",
    "InvalidSchema",
    "SchemaError",
    "SchemaNotFound",
    "SerializationError",
    "UnknownEventType",
    "UnknownSchemaId",
]
