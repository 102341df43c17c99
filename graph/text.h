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

}  // namespace mosaic::graph
