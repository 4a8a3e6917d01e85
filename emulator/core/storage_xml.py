"""XML pieces every storage endpoint writes and reads the same way: the declaration, escaped
text, ``<Name>`` (percent-encoded where XML 1.0 cannot carry it), optional elements, metadata,
and request bodies refused as the services refuse them (no DTDs, well-formed, expected root)."""
from __future__ import annotations

import re
from typing import Optional
from urllib.parse import quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from . import storage_errors as err

HEADER = '<?xml version="1.0" encoding="utf-8"?>'
# Characters XML 1.0 cannot carry (and lone surrogates from undecodable file names).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(value) -> str:
    return escape(str(value))


def name_element(value: str) -> str:
    """A ``<Name>`` element, percent-encoded with ``Encoded="true"`` when XML cannot carry it (as
    the service does); an undecodable file name's bytes are encoded as they are."""
    if _XML_INVALID.search(value):
        return '<Name Encoded="true">{}</Name>'.format(quote(value.encode("utf-8", "surrogateescape"), safe=""))
    return "<Name>{}</Name>".format(xml_text(value))


def optional_element(tag: str, value: Optional[object]) -> str:
    if value in (None, ""):
        return "<{}/>".format(tag)
    return "<{0}>{1}</{0}>".format(tag, xml_text(value))


def metadata_element(metadata: dict) -> str:
    return "<Metadata>{}</Metadata>".format("".join("<{0}>{1}</{0}>".format(k, xml_text(v))
                                                    for k, v in sorted(metadata.items())))


def parse_body(data: bytes, root_tag: Optional[str]) -> ElementTree.Element:
    """A request's XML body, refused as the service does (400 InvalidXmlDocument) when it is not
    well-formed, declares a DTD, or (``root_tag``) has another root element."""
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise err.invalid_xml()
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        raise err.invalid_xml() from None
    if root_tag is not None and root.tag != root_tag:
        raise err.invalid_xml()
    return root
