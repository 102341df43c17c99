// Text helpers shared by importers: UTF-8 validation and the normalisation of entity keys.
#pragma once

#include <string>
#include <string_view>

namespace mosaic::graph {

// Returns the byte offset of the first ill-formed UTF-8 sequence in `s`, or npos if none.
size_t FindInvalidUtf8(std::string_view s);

// Trims, collapses runs of white space to one space and case-folds (ICU full folding), so
// that "  Hip  Hop" and "hip hop" name the same entity. `s` must be valid UTF-8.
std::string NormalizeKey(std::string_view s);

// Trims and collapses runs of white space, keeping case (for display labels).
std::string CollapseSpaces(std::string_view s);

// Case-folded form of `s` for case-insensitive comparison.
std::string FoldCase(std::string_view s);

// Returns the byte offset of the first control character in `s` (C0 controls U+0000..U+001F, DEL,
// C1 controls U+0080..U+009F), or npos if none. Tab, line feed and carriage return are allowed when
// `allow_line_breaks` (descriptions). `s` must be valid UTF-8 for C1 controls to be found.
size_t FindControlCharacter(std::string_view s, bool allow_line_breaks = false);

// The lossless display form of bytes that may not be text (a file name): valid UTF-8 other than
// control characters is kept, a backslash becomes "\\", and every other byte (ill-formed UTF-8, the
// bytes of a control character) becomes "\xNN" (two lower-case hex digits). The result is valid
// UTF-8 with no control characters, and the original bytes can be recovered from it.
std::string DisplayBytes(std::string_view s);

// `s` for printing on a terminal: control characters and ill-formed UTF-8 bytes become "\xNN";
// everything else, backslashes included, is kept (a display form, not lossless: see DisplayBytes).
std::string EscapeControl(std::string_view s);

}  // namespace mosaic::graph
