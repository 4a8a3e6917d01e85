"""The Blob service's XML bodies (list containers, list blobs, block lists, service properties)
in the shape azure-storage-blob 12.x parses, and the one XML body it reads (Put Block List)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import Iterable, Optional
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from . import exceptions as err
from .models import CONTENT_PROPERTIES, Blob, Container

_HEADER = '<?xml version="1.0" encoding="utf-8"?>'
# Characters XML 1.0 cannot carry.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: Largest Put Block List body accepted (50,000 ids of 64 bytes, with their tags).
MAX_BLOCK_LIST_BODY = 8 * 1024 * 1024


def _text(value) -> str:
    return escape(str(value))


def _name(value: str) -> str:
    """A ``<Name>``, percent-encoded with ``Encoded="true"`` when XML cannot carry it (as the service)."""
    if _XML_INVALID.search(value):
        return '<Name Encoded="true">{}</Name>'.format(quote(value, safe=""))
    return "<Name>{}</Name>".format(_text(value))


def _optional(tag: str, value: Optional[object]) -> str:
    if value in (None, ""):
        return "<{}/>".format(tag)
    return "<{0}>{1}</{0}>".format(tag, _text(value))


def _metadata(metadata: dict) -> str:
    return "<Metadata>{}</Metadata>".format("".join("<{0}>{1}</{0}>".format(k, _text(v))
                                                    for k, v in sorted(metadata.items())))


def list_containers(service_url: str, containers: Iterable[Container], prefix: str, marker: str,
                    max_results: Optional[int], next_marker: str, include_metadata: bool) -> bytes:
    parts = [_HEADER, "<EnumerationResults ServiceEndpoint={}>".format(quoteattr(service_url)),
             _optional("Prefix", prefix), _optional("Marker", marker), _optional("MaxResults", max_results),
             "<Containers>"]
    for container in containers:
        parts.append("<Container><Name>{}</Name><Properties><Last-Modified>{}</Last-Modified><Etag>{}</Etag>"
                     "<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>{}"
                     "<HasImmutabilityPolicy>false</HasImmutabilityPolicy><HasLegalHold>false</HasLegalHold>"
                     "</Properties>".format(_text(container.name), container.last_modified, _text(container.etag),
                                            "<PublicAccess>{}</PublicAccess>".format(container.public_access)
                                            if container.public_access else ""))
        if include_metadata:
            parts.append(_metadata(container.metadata))
        parts.append("</Container>")
    parts += ["</Containers>", _optional("NextMarker", next_marker), "</EnumerationResults>"]
    return "".join(parts).encode("utf-8")


def list_blobs(service_url: str, container: str, items: Iterable, prefix: str, marker: str,
               max_results: Optional[int], delimiter: str, next_marker: str, include_metadata: bool) -> bytes:
    parts = [_HEADER, "<EnumerationResults ServiceEndpoint={} ContainerName={}>".format(
        quoteattr(service_url), quoteattr(container)),
        _optional("Prefix", prefix), _optional("Marker", marker), _optional("MaxResults", max_results)]
    if delimiter:
        parts.append(_optional("Delimiter", delimiter))
    parts.append("<Blobs>")
    for item in items:
        if isinstance(item, str):
            parts.append("<BlobPrefix>{}</BlobPrefix>".format(_name(item)))
            continue
        parts.append("<Blob>{}<Properties>{}</Properties>".format(_name(item.name), _blob_properties(item)))
        if include_metadata:
            parts.append(_metadata(item.metadata))
        parts.append("</Blob>")
    parts += ["</Blobs>", _optional("NextMarker", next_marker), "</EnumerationResults>"]
    return "".join(parts).encode("utf-8")


def _blob_properties(blob: Blob) -> str:
    fields = ["<Creation-Time>{}</Creation-Time>".format(blob.created),
              "<Last-Modified>{}</Last-Modified>".format(blob.last_modified),
              "<Etag>{}</Etag>".format(_text(blob.etag)),
              "<Content-Length>{}</Content-Length>".format(blob.size),
              _optional("Content-Type", blob.properties.get("x-ms-blob-content-type") or "application/octet-stream")]
    for header in ("x-ms-blob-content-encoding", "x-ms-blob-content-language", "x-ms-blob-content-md5",
                   "x-ms-blob-cache-control", "x-ms-blob-content-disposition"):
        fields.append(_optional(CONTENT_PROPERTIES[header], blob.properties.get(header)))
    fields.append("<BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><AccessTierInferred>true"
                  "</AccessTierInferred><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
                  "<ServerEncrypted>true</ServerEncrypted>")
    return "".join(fields)


def block_list(committed: Optional[list], uncommitted: Optional[list]) -> bytes:
    parts = [_HEADER, "<BlockList>"]
    for tag, blocks in (("CommittedBlocks", committed), ("UncommittedBlocks", uncommitted)):
        if blocks is None:
            continue
        parts.append("<{}>".format(tag))
        parts += ["<Block><Name>{}</Name><Size>{}</Size></Block>".format(_text(block_id), size)
                  for block_id, size in blocks]
        parts.append("</{}>".format(tag))
    parts.append("</BlockList>")
    return "".join(parts).encode("utf-8")


def service_properties() -> bytes:
    logging = ("<Logging><Version>1.0</Version><Read>false</Read><Write>false</Write><Delete>false</Delete>"
               "<RetentionPolicy><Enabled>false</Enabled></RetentionPolicy></Logging>")
    metrics = ("<Version>1.0</Version><Enabled>false</Enabled>"
               "<RetentionPolicy><Enabled>false</Enabled></RetentionPolicy>")
    return ("{}<StorageServiceProperties>{}<HourMetrics>{m}</HourMetrics><MinuteMetrics>{m}</MinuteMetrics><Cors/>"
            "<DeleteRetentionPolicy><Enabled>false</Enabled></DeleteRetentionPolicy></StorageServiceProperties>"
            ).format(_HEADER, logging, m=metrics).encode("utf-8")


def parse_block_list(body: bytes) -> list[tuple[str, str]]:
    """Put Block List's body as (where, block id) pairs, where is latest/committed/uncommitted."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():  # no DTDs: nothing to expand
        raise err.invalid_xml()
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise err.invalid_xml() from None
    if root.tag != "BlockList":
        raise err.invalid_xml()
    entries = []
    for child in root:
        where = child.tag.lower()
        if where not in ("latest", "committed", "uncommitted"):
            raise err.invalid_xml()
        entries.append((where, (child.text or "").strip()))
    return entries
