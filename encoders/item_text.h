// The text Mosaic encodes for an item (plain string work: no LibTorch).
#pragma once

#include <string>
#include <vector>

namespace mosaic::encoders {

// What Mosaic encodes for an item, so that the 128-token cut keeps what matters most.
struct ItemText {
  std::string title;
  std::vector<std::string> tags;
  std::vector<std::string> people;  ///< artist, album, director, cast… (in the order given)
  std::vector<std::string> genres;
  std::string description;
};

// The text of an item, built in this order of sections:
//   title. tag, tag, …. person, person, …. genre, genre, …. description
// Precisely:
//  - every value has its runs of whitespace (space, tab, CR, LF, VT, FF) collapsed to one space and
//    is trimmed; values that are then empty are dropped;
//  - a tag, person or genre equal (ASCII case-insensitively) to the title or to an earlier tag,
//    person or genre is dropped (it would only spend tokens);
//  - the values of a list section are joined with ", "; empty sections are left out;
//  - sections are joined with ". ", or with " " after a section that already ends in '.', '!' or
//    '?'; nothing is appended after the last section.
// E.g. {"Blue Train", {"hard bop", "jazz"}, {"John Coltrane"}, {"Jazz"}, "Recorded in 1957."} gives
// "Blue Train. hard bop, jazz. John Coltrane. Recorded in 1957.". An item with nothing gives "".
std::string ComposeItemText(const ItemText& item);

}  // namespace mosaic::encoders
