"""The File service's XML bodies (list shares, list directories and files, ranges, stats,
service properties), in the shape azure-storage-file-share 12.x and the legacy SDK parse."""
from __future__ import annotations

from typing import Iterable, Optional
from xml.sax.saxutils import quoteattr

from ..core.storage_xml import (  # noqa: F401 (parse_body re-exported for the handlers)
    HEADER, metadata_element, name_element, optional_element, parse_body, xml_text)
from .models import Entry, Share


def list_shares(service_url: str, shares: Iterable[Share], prefix: str, marker: str, max_results: Optional[int],
                next_marker: str, include_metadata: bool) -> bytes:
    parts = [HEADER, "<EnumerationResults ServiceEndpoint={}>".format(quoteattr(service_url)),
             optional_element("Prefix", prefix), optional_element("Marker", marker), optional_element("MaxResults", max_results),
             "<Shares>"]
    for share in shares:
        parts.append("<Share><Name>{}</Name><Properties><Last-Modified>{}</Last-Modified><Etag>{}</Etag>"
                     "<Quota>{}</Quota></Properties>".format(xml_text(share.name), xml_text(share.last_modified),
                                                             xml_text(share.etag), share.quota))
        if include_metadata:
            parts.append(metadata_element(share.metadata))
        parts.append("</Share>")
    parts.append("</Shares>")
    parts.append(optional_element("NextMarker", next_marker))
    parts.append("</EnumerationResults>")
    return "".join(parts).encode("utf-8")


def list_directory(service_url: str, share: str, directory_path: str, entries: Iterable[Entry], prefix: str,
                   marker: str, max_results: Optional[int], next_marker: str) -> bytes:
    parts = [HEADER, "<EnumerationResults ServiceEndpoint={} ShareName={} DirectoryPath={}>".format(
        quoteattr(service_url), quoteattr(share), quoteattr(directory_path)),
        "<Prefix>{}</Prefix>".format(xml_text(prefix or "")), optional_element("Marker", marker),
        optional_element("MaxResults", max_results), "<Entries>"]
    for entry in entries:
        times = ("<CreationTime>{}</CreationTime><LastAccessTime>{}</LastAccessTime><LastWriteTime>{}</LastWriteTime>"
                 "<ChangeTime>{}</ChangeTime><Last-Modified>{}</Last-Modified><Etag>{}</Etag>").format(
            entry.creation_time, entry.last_access_time, entry.last_write_time, entry.change_time,
            entry.last_modified, xml_text(entry.etag))
        if entry.is_dir:
            parts.append("<Directory>{}<FileId>{}</FileId><Properties>{}</Properties>"
                         "<Attributes>Directory</Attributes></Directory>".format(name_element(entry.name), entry.ino, times))
        else:
            parts.append("<File>{}<FileId>{}</FileId><Properties><Content-Length>{}</Content-Length>{}</Properties>"
                         "<Attributes>Archive</Attributes></File>".format(name_element(entry.name), entry.ino, entry.size,
                                                                          times))
    parts.append("</Entries>")
    parts.append(optional_element("NextMarker", next_marker))
    parts.append("</EnumerationResults>")
    return "".join(parts).encode("utf-8")


def ranges(size: int) -> bytes:
    body = "<Range><Start>0</Start><End>{}</End></Range>".format(size - 1) if size else ""
    return "{}<Ranges>{}</Ranges>".format(HEADER, body).encode("utf-8")


def share_stats(usage_bytes: int) -> bytes:
    return "{}<ShareStats><ShareUsageBytes>{}</ShareUsageBytes></ShareStats>".format(HEADER, usage_bytes).encode()


def service_properties() -> bytes:
    metrics = "<Version>1.0</Version><Enabled>false</Enabled><RetentionPolicy><Enabled>false</Enabled></RetentionPolicy>"
    return ("{}<StorageServiceProperties><HourMetrics>{m}</HourMetrics><MinuteMetrics>{m}</MinuteMetrics><Cors/>"
            "</StorageServiceProperties>").format(HEADER, m=metrics).encode("utf-8")
