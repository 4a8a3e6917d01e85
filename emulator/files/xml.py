"""The File service's XML bodies (list shares, list directories and files, ranges, stats,
service properties), in the shape azure-storage-file-share 12.x and the legacy SDK parse."""
from __future__ import annotations

import re
from typing import Iterable, Optional
from urllib.parse import quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

from . import exceptions as err
from .models import Entry, Share

_HEADER = '<?xml version="1.0" encoding="utf-8"?>'
# Characters XML 1.0 cannot carry (and lone surrogates from undecodable file names).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _text(value) -> str:
    return escape(str(value))


def _name(value: str) -> str:
    """A ``<Name>`` element, percent-encoded with ``Encoded="true"`` when XML cannot carry it."""
    if _XML_INVALID.search(value):
        return '<Name Encoded="true">{}</Name>'.format(quote(value.encode("utf-8", "surrogateescape"), safe=""))
    return "<Name>{}</Name>".format(_text(value))


def _optional(tag: str, value: Optional[object]) -> str:
    if value in (None, ""):
        return "<{}/>".format(tag)
    return "<{0}>{1}</{0}>".format(tag, _text(value))


def _metadata(metadata: dict) -> str:
    return "<Metadata>{}</Metadata>".format("".join("<{0}>{1}</{0}>".format(k, _text(v))
                                                    for k, v in sorted(metadata.items())))


def list_shares(service_url: str, shares: Iterable[Share], prefix: str, marker: str, max_results: Optional[int],
                next_marker: str, include_metadata: bool) -> bytes:
    parts = [_HEADER, "<EnumerationResults ServiceEndpoint={}>".format(quoteattr(service_url)),
             _optional("Prefix", prefix), _optional("Marker", marker), _optional("MaxResults", max_results),
             "<Shares>"]
    for share in shares:
        parts.append("<Share><Name>{}</Name><Properties><Last-Modified>{}</Last-Modified><Etag>{}</Etag>"
                     "<Quota>{}</Quota></Properties>".format(_text(share.name), _text(share.last_modified),
                                                             _text(share.etag), share.quota))
        if include_metadata:
            parts.append(_metadata(share.metadata))
        parts.append("</Share>")
    parts.append("</Shares>")
    parts.append(_optional("NextMarker", next_marker))
    parts.append("</EnumerationResults>")
    return "".join(parts).encode("utf-8")


def list_directory(service_url: str, share: str, directory_path: str, entries: Iterable[Entry], prefix: str,
                   marker: str, max_results: Optional[int], next_marker: str) -> bytes:
    parts = [_HEADER, "<EnumerationResults ServiceEndpoint={} ShareName={} DirectoryPath={}>".format(
        quoteattr(service_url), quoteattr(share), quoteattr(directory_path)),
        "<Prefix>{}</Prefix>".format(_text(prefix or "")), _optional("Marker", marker),
        _optional("MaxResults", max_results), "<Entries>"]
    for entry in entries:
        times = ("<CreationTime>{}</CreationTime><LastAccessTime>{}</LastAccessTime><LastWriteTime>{}</LastWriteTime>"
                 "<ChangeTime>{}</ChangeTime><Last-Modified>{}</Last-Modified><Etag>{}</Etag>").format(
            entry.creation_time, entry.last_access_time, entry.last_write_time, entry.change_time,
            entry.last_modified, _text(entry.etag))
        if entry.is_dir:
            parts.append("<Directory>{}<FileId>{}</FileId><Properties>{}</Properties>"
                         "<Attributes>Directory</Attributes></Directory>".format(_name(entry.name), entry.ino, times))
        else:
            parts.append("<File>{}<FileId>{}</FileId><Properties><Content-Length>{}</Content-Length>{}</Properties>"
                         "<Attributes>Archive</Attributes></File>".format(_name(entry.name), entry.ino, entry.size,
                                                                          times))
    parts.append("</Entries>")
    parts.append(_optional("NextMarker", next_marker))
    parts.append("</EnumerationResults>")
    return "".join(parts).encode("utf-8")


def ranges(size: int) -> bytes:
    body = "<Range><Start>0</Start><End>{}</End></Range>".format(size - 1) if size else ""
    return "{}<Ranges>{}</Ranges>".format(_HEADER, body).encode("utf-8")


def share_stats(usage_bytes: int) -> bytes:
    return "{}<ShareStats><ShareUsageBytes>{}</ShareUsageBytes></ShareStats>".format(_HEADER, usage_bytes).encode()


def service_properties() -> bytes:
    metrics = "<Version>1.0</Version><Enabled>false</Enabled><RetentionPolicy><Enabled>false</Enabled></RetentionPolicy>"
    return ("{}<StorageServiceProperties><HourMetrics>{m}</HourMetrics><MinuteMetrics>{m}</MinuteMetrics><Cors/>"
            "</StorageServiceProperties>").format(_HEADER, m=metrics).encode("utf-8")


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
