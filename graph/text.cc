#include "graph/text.h"

#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

namespace mosaic::graph {

size_t FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const int32_t n = int32_t(s.size());
  int32_t i = 0;
  while (i < n) {
    const int32_t start = i;
    UChar32 c;
    U8_NEXT(p, i, n, c);
    if (c < 0) return size_t(start);
  }
  return std::string_view::npos;
}

std::string CollapseSpaces(std::string_view s) {
  icu::UnicodeString in = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), int32_t(s.size())));
  icu::UnicodeString out;
  bool pending_space = false;
  for (int32_t i = 0; i < in.length();) {
    UChar32 c = in.char32At(i);
    i += U16_LENGTH(c);
    if (u_isUWhiteSpace(c)) {
      pending_space = !out.isEmpty();
      continue;
    }
    if (pending_space) out.append(UChar(' '));
    pending_space = false;
    out.append(c);
  }
  std::string result;
  out.toUTF8String(result);
  return result;
}

std::string FoldCase(std::string_view s) {
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), int32_t(s.size())));
  u.foldCase();
  std::string result;
  u.toUTF8String(result);
  return result;
}

std::string NormalizeKey(std::string_view s) { return FoldCase(CollapseSpaces(s)); }

namespace {

bool IsControl(UChar32 c) { return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f); }

// Walks `s` by code point: valid non-control code points are kept; each byte of anything else is
// written as \xNN; a backslash is doubled when `double_backslash`.
std::string Escape(std::string_view s, bool double_backslash) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const int32_t n = int32_t(s.size());
  for (int32_t i = 0; i < n;) {
    const int32_t start = i;
    UChar32 c;
    U8_NEXT(p, i, n, c);
    if (c >= 0 && !IsControl(c)) {
      if (c == '\\' && double_backslash) out += '\\';
      out.append(s.data() + start, size_t(i - start));
      continue;
    }
    // An ill-formed sequence: only its first byte is escaped, the rest is read again.
    if (c < 0) i = start + 1;
    for (int32_t b = start; b < i; ++b) {
      out += "\\x";
      out += kHex[p[b] >> 4];
      out += kHex[p[b] & 15];
    }
  }
  return out;
}

}  // namespace

size_t FindControlCharacter(std::string_view s, bool allow_line_breaks) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const int32_t n = int32_t(s.size());
  for (int32_t i = 0; i < n;) {
    const int32_t start = i;
    UChar32 c;
    U8_NEXT(p, i, n, c);
    if (c < 0) {  // ill-formed (not a control character; ASCII bytes are never ill-formed)
      i = start + 1;
      continue;
    }
    const bool line_break = c == '\t' || c == '\n' || c == '\r';
    if (IsControl(c) && !(allow_line_breaks && line_break)) return size_t(start);
  }
  return std::string_view::npos;
}

std::string DisplayBytes(std::string_view s) { return Escape(s, /*double_backslash=*/true); }

std::string EscapeControl(std::string_view s) { return Escape(s, /*double_backslash=*/false); }

}  // namespace mosaic::graph
