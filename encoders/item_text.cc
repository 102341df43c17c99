#include "encoders/item_text.h"

#include <algorithm>

namespace mosaic::encoders {

namespace {

// Whitespace runs collapsed to one space, trimmed.
std::string Clean(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      space = false;
      out += c;
    }
  }
  return out;
}

std::string AsciiLower(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

}  // namespace

std::string ComposeItemText(const ItemText& item) {
  std::vector<std::string> sections;
  std::vector<std::string> seen;  // lower-cased title and list values
  const std::string title = Clean(item.title);
  if (!title.empty()) {
    sections.push_back(title);
    seen.push_back(AsciiLower(title));
  }
  for (const std::vector<std::string>* list : {&item.tags, &item.people, &item.genres}) {
    std::string section;
    for (const std::string& raw : *list) {
      std::string value = Clean(raw);
      if (value.empty()) continue;
      std::string key = AsciiLower(value);
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
      seen.push_back(std::move(key));
      if (!section.empty()) section += ", ";
      section += value;
    }
    if (!section.empty()) sections.push_back(std::move(section));
  }
  std::string description = Clean(item.description);
  if (!description.empty()) sections.push_back(std::move(description));

  std::string text;
  for (const std::string& s : sections) {
    if (!text.empty()) {
      const char last = text.back();
      text += (last == '.' || last == '!' || last == '?') ? " " : ". ";
    }
    text += s;
  }
  return text;
}

}  // namespace mosaic::encoders
