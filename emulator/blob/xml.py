"""The Blob service's XML bodies (list containers, list blobs, block lists, service properties)
in the shape azure-storage-blob 12.x parses, and the one XML body it reads (Put Block List)."""
from __future__ import annotations

from typing import Iterable, Optional
from xml.sax.saxutils import quoteattr

from ..core.storage_xml import HEADER, metadata_element, name_element, optional_element, parse_body, xml_text
from . import exceptions as err
from .models import CONTENT_PROPERTIES, Blob, Container

#: Largest Put Block List body accepted (50,000 ids of 64 bytes, with their tags).
MAX_BLOCK_LIST_BODY = 8 * 1024 * 1024


def list_containers(service_url: str, containers: Iterable[Container], prefix: str, marker: str,
                    max_results: Optional[int], next_marker: str, include_metadata: bool) -> bytes:
    parts = [HEADER, "<EnumerationResults ServiceEndpoint={}>".format(quoteattr(service_url)),
             optional_element("Prefix", prefix), optional_element("Marker", marker), optional_element("MaxResults", max_results),
             "<Containers>"]
    for container in containers:
        parts.append("<Container><Name>{}</Name><Properties><Last-Modified>{}</Last-Modified><Etag>{}</Etag>"
                     "<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>{}"
                     "<HasImmutabilityPolicy>false</HasImmutabilityPolicy><HasLegalHold>false</HasLegalHold>"
                     "</Properties>".format(xml_text(container.name), container.last_modified, xml_text(container.etag),
                                            "<PublicAccess>{}</PublicAccess>".format(container.public_access)
                                            if container.public_access else ""))
        if include_metadata:
            parts.append(metadata_element(container.metadata))
        parts.append("</Container>")
    parts += ["</Containers>", optional_element("NextMarker", next_marker), "</EnumerationResults>"]
    return "".join(parts).encode("utf-8")


def list_blobs(service_url: str, container: str, items: Iterable, prefix: str, marker: str,
               max_results: Optional[int], delimiter: str, next_marker: str, include_metadata: bool) -> bytes:
    parts = [HEADER, "<EnumerationResults ServiceEndpoint={} ContainerName={}>".format(
        quoteattr(service_url), quoteattr(container)),
        optional_element("Prefix", prefix), optional_element("Marker", marker), optional_element("MaxResults", max_results)]
    if delimiter:
        parts.append(optional_element("Delimiter", delimiter))
    parts.append("<Blobs>")
    for item in items:
        if isinstance(item, str):
            parts.append("<BlobPrefix>{}</BlobPrefix>".format(name_element(item)))
            continue
        parts.append("<Blob>{}<Properties>{}</Properties>".format(name_element(item.name), _blob_properties(item)))
        if include_metadata:
            parts.append(metadata_element(item.metadata))
        parts.append("</Blob>")
    parts += ["</Blobs>", optional_element("NextMarker", next_marker), "</EnumerationResults>"]
    return "".join(parts).encode("utf-8")


def _blob_properties(blob: Blob) -> str:
    fields = ["<Creation-Time>{}</Creation-Time>".format(blob.created),
              "<Last-Modified>{}</Last-Modified>".format(blob.last_modified),
              "<Etag>{}</Etag>".format(xml_text(blob.etag)),
              "<Content-Length>{}</Content-Length>".format(blob.size),
              optional_element("Content-Type", blob.properties.get("x-ms-blob-content-type") or "application/octet-stream")]
    for header in ("x-ms-blob-content-encoding", "x-ms-blob-content-language", "x-ms-blob-content-md5",
                   "x-ms-blob-cache-control", "x-ms-blob-content-disposition"):
        fields.append(optional_element(CONTENT_PROPERTIES[header], blob.properties.get(header)))
    fields.append("<BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><AccessTierInferred>true"
                  "</AccessTierInferred><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
                  "<ServerEncrypted>true</ServerEncrypted>")
    return "".join(fields)


def block_list(committed: Optional[list], uncommitted: Optional[list]) -> bytes:
    parts = [HEADER, "<BlockList>"]
    for tag, blocks in (("CommittedBlocks", committed), ("UncommittedBlocks", uncommitted)):
        if blocks is None:
            continue
        parts.append("<{}>".format(tag))
        parts += ["<Block><Name>{}</Name><Size>{}</Size></Block>".format(xml_text(block_id), size)
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
            ).format(HEADER, logging, m=metrics).encode("utf-8")


def parse_block_list(body: bytes) -> list[tuple[str, str]]:
    """Put Block List's body as (where, block id) pairs, where is latest/committed/uncommitted."""
    root = parse_body(body, "BlockList")
    entries = []
    for child in root:
        where = child.tag.lower()
        if where not in ("latest", "committed", "uncommitted"):
            raise err.invalid_xml()
        entries.append((where, (child.text or "").strip()))
    return entries
