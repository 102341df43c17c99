#include "graph/import.h"

#include <csv.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>
#include <variant>

#include "graph/catalogue.h"
#include "graph/text.h"
#include "graph/text_features.h"
#include "store/store.h"

namespace mosaic::graph {

namespace fs = std::filesystem;
using store::NodeId;
using store::NodeKind;
using store::RelationId;

const std::vector<ImportFormatInfo>& ImportFormats() {
  static const std::vector<ImportFormatInfo> formats = {
      {ImportFormat::kKgTriples, "kg", "KG triples head<TAB>relation<TAB>tail (with --links item<TAB>entity)"},
      {ImportFormat::kKgLinks, "kg-links", "item-to-entity links item<TAB>entity (KGCN item_index2entity_id.txt)"},
      {ImportFormat::kLastfmPlays, "lastfm-plays", "Last.FM user_artists.dat: userID<TAB>artistID<TAB>weight"},
      {ImportFormat::kMovielensRatings, "movielens-ratings", "MovieLens ratings.csv: userId,movieId,rating,timestamp"},
      {ImportFormat::kInteractions, "interactions",
       "generic TSV (CSV if *.csv) with header: user,item[,weight][,timestamp]"},
      {ImportFormat::kHetrecArtists, "hetrec-artists", "HetRec artists.dat: id<TAB>name<TAB>url<TAB>pictureURL"},
      {ImportFormat::kMovielensMovies, "movielens-movies", "MovieLens movies.csv: movieId,title,genres"},
      {ImportFormat::kMovielensTags, "movielens-tags", "MovieLens tags.csv: userId,movieId,tag,timestamp"},
      {ImportFormat::kCatalogueJsonl, "jsonl",
       "catalogue, one JSON object per line: id, title, description, kind, year, tags, artist, genre, ..."},
  };
  return formats;
}

Status ParseImportFormat(std::string_view name, ImportFormat* format) {
  std::string known;
  for (const auto& f : ImportFormats()) {
    if (name == f.name) {
      *format = f.format;
      return Status::OK();
    }
    known += known.empty() ? "" : ", ";
    known += f.name;
  }
  return Status::InvalidArgument("unknown import format '" + std::string(name) + "' (known: " + known + ")");
}

std::string RelationForField(std::string_view field) {
  if (field == "tags") return "tag";
  if (field == "genres") return "genre";
  if (field == "artists") return "artist";
  return std::string(field);
}

std::string EntityKey(std::string_view relation, std::string_view value) {
  return std::string(relation) + ":" + NormalizeKey(value);
}

Status ValidateRelationName(std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return Status::InvalidArgument("relation name must have 1 to 128 characters");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == ':' || c == '/' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("relation '" + std::string(name) +
                                     "' is not a relation name (letters, digits and . _ : / - only)");
    }
  }
  if (name == store::kInteractedRelation) {
    return Status::InvalidArgument("relation 'interacted' is reserved for interactions");
  }
  return Status::OK();
}

namespace {

// ---------------------------------------------------------------------------------------------
// Records: the fields of one line (TSV, CSV or a whole line), with its line number.

struct Record {
  size_t line = 0;
  std::vector<std::string> fields;
};

enum class Dialect { kTsv, kCsv, kLine };

class RecordReader {
 public:
  ~RecordReader() {
    if (csv_ready_) csv_free(&csv_);
  }

  Status Open(const std::string& path, Dialect dialect) {
    path_ = path;
    dialect_ = dialect;
    std::error_code ec;
    if (!fs::exists(path, ec)) return Status::NotFound("cannot open '" + path + "': no such file");
    if (fs::is_directory(path, ec)) return Status::InvalidArgument("'" + path + "' is a folder, not a file");
    auto file = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (!*file) return Status::IOError("cannot open '" + path + "': " + std::strerror(errno));
    in_ = std::move(file);
    return StartCsv();
  }

  // Reads `text` as the contents of a file called `name` (CheckImportText).
  Status OpenText(const std::string& name, std::string_view text, Dialect dialect) {
    path_ = name;
    dialect_ = dialect;
    in_ = std::make_unique<std::istringstream>(std::string(text), std::ios::binary);
    return StartCsv();
  }

  uint64_t bytes_read() const { return bytes_read_; }

  // Reads the next non-blank record; sets *eof at the end of the file.
  Status Next(Record* record, bool* eof) {
    *eof = false;
    while (ready_.empty()) {
      if (at_end_) {
        *eof = true;
        return Status::OK();
      }
      MOSAIC_RETURN_IF_ERROR(ReadLine());
    }
    *record = std::move(ready_.front());
    ready_.pop_front();
    return Status::OK();
  }

  Status Error(size_t line, const std::string& what) const {
    return Status::InvalidArgument(path_ + ":" + std::to_string(line) + ": " + what);
  }

 private:
  Status StartCsv() {
    if (dialect_ == Dialect::kCsv) {
      if (csv_init(&csv_, CSV_STRICT | CSV_STRICT_FINI) != 0) return Status::IOError("cannot start the CSV parser");
      csv_ready_ = true;
    }
    return Status::OK();
  }

  Status ReadLine() {
    std::string line;
    if (!std::getline(*in_, line)) {
      if (in_->bad()) return Status::IOError("reading '" + path_ + "': " + std::strerror(errno));
      at_end_ = true;
      if (csv_ready_ && csv_fini(&csv_, OnField, OnRecord, this) != 0) {
        return Error(record_start_, "unterminated quoted CSV field (the quote opened here is never closed)");
      }
      return Status::OK();
    }
    bytes_read_ += line.size() + (in_->eof() ? 0 : 1);
    ++line_no_;
    if (line_no_ == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t bad = FindInvalidUtf8(line);
    if (bad != std::string::npos) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", unsigned(static_cast<unsigned char>(line[bad])));
      return Error(line_no_, "invalid UTF-8 (byte " + std::string(hex) + " at column " + std::to_string(bad + 1) + ")");
    }
    if (dialect_ == Dialect::kCsv) {
      if (!in_record_) {
        if (line.empty()) return Status::OK();
        record_start_ = line_no_;
        in_record_ = true;
      }
      line.push_back('\n');
      if (csv_parse(&csv_, line.data(), line.size(), OnField, OnRecord, this) != line.size()) {
        std::string what = std::string("malformed CSV: ") + csv_strerror(csv_error(&csv_));
        if (record_start_ != line_no_) what += " (in the record starting on line " + std::to_string(record_start_) + ")";
        return Error(record_start_ != line_no_ ? record_start_ : line_no_, what);
      }
      return Status::OK();
    }
    if (line.find_first_not_of(" \t") == std::string::npos) return Status::OK();
    Record r;
    r.line = line_no_;
    if (dialect_ == Dialect::kLine) {
      r.fields.push_back(std::move(line));
    } else {
      size_t start = 0;
      for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1) {
        r.fields.push_back(line.substr(start, tab - start));
      }
      r.fields.push_back(line.substr(start));
    }
    ready_.push_back(std::move(r));
    return Status::OK();
  }

  static void OnField(void* data, size_t len, void* self) {
    auto* me = static_cast<RecordReader*>(self);
    me->building_.fields.emplace_back(static_cast<const char*>(data), len);
  }
  static void OnRecord(int, void* self) {
    auto* me = static_cast<RecordReader*>(self);
    me->building_.line = me->record_start_;
    me->in_record_ = false;
    me->ready_.push_back(std::move(me->building_));
    me->building_ = Record();
  }

  std::string path_;
  Dialect dialect_ = Dialect::kTsv;
  std::unique_ptr<std::istream> in_;  // the file, or the text of CheckImportText
  size_t line_no_ = 0;
  uint64_t bytes_read_ = 0;
  bool at_end_ = false;
  csv_parser csv_{};
  bool csv_ready_ = false;
  bool in_record_ = false;   // a CSV record has begun and not yet ended
  size_t record_start_ = 0;  // line on which the current CSV record began
  Record building_;
  std::deque<Record> ready_;
};

// ---------------------------------------------------------------------------------------------
// Rows: what a record means, independent of the file format.

using ItemRow = CatalogueItem;
struct InteractionRow {
  std::string user, item;
  double weight = 1.0;
  int64_t timestamp = 0;
};
struct TagRow {
  std::string user, item, tag;
  int64_t timestamp = 0;
};
struct TripleRow {
  std::string head, relation, tail;
};
struct LinkRow {
  std::string item, entity;
};
using Row = std::variant<ItemRow, InteractionRow, TagRow, TripleRow, LinkRow>;

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

// Canonical decimal form of a non-negative integer id, or an error naming the column.
Status ParseId(const std::string& text, const char* column, std::string* out) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::InvalidArgument(std::string(column) + " '" + text + "' is not a non-negative integer");
  }
  *out = std::to_string(v);
  return Status::OK();
}

Status ParseNumber(const std::string& text, const char* column, double* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(*out)) {
    return Status::InvalidArgument(std::string(column) + " '" + text + "' is not a number");
  }
  return Status::OK();
}

// A play count, rating or strength: a finite number in 0..kMaxWeight.
Status ParseWeight(const std::string& text, const char* column, double* out) {
  MOSAIC_RETURN_IF_ERROR(ParseNumber(text, column, out));
  if (*out < 0) return Status::InvalidArgument(std::string(column) + " '" + text + "' is negative");
  if (*out > kMaxWeight) {
    return Status::InvalidArgument(std::string(column) + " '" + text + "' is above the largest weight, 1e9");
  }
  return Status::OK();
}

Status ParseTimestamp(const std::string& text, const char* column, int64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::InvalidArgument(std::string(column) + " '" + text + "' is not an integer timestamp");
  }
  // As POST /interactions: seconds since the epoch, 0..2^63-1 (time-ordered protocols sort by it).
  if (*out < 0) return Status::InvalidArgument(std::string(column) + " '" + text + "' is negative (seconds since the epoch)");
  return Status::OK();
}

// An id, title, entity or tag: not empty once spaces are collapsed, no control character.
Status RequireText(const std::string& text, const char* column) {
  MOSAIC_RETURN_IF_ERROR(RefuseControlCharacters(text, column));
  if (CollapseSpaces(text).empty()) return Status::InvalidArgument(std::string(column) + " is empty");
  return Status::OK();
}

}  // namespace

Status RefuseControlCharacters(std::string_view text, const std::string& what, bool allow_line_breaks) {
  const size_t at = FindControlCharacter(text, allow_line_breaks);
  if (at == std::string_view::npos) return Status::OK();
  // C0 and DEL are one byte; a C1 control is U+0080 + the low bits of its second byte.
  const unsigned code = uint8_t(text[at]) < 0x80 ? uint8_t(text[at]) : 0x80 + (uint8_t(text[at + 1]) & 0x1f);
  char hex[8];
  std::snprintf(hex, sizeof hex, "%04X", code);
  return Status::InvalidArgument(what + " contains a control character (U+" + hex + " at byte " + std::to_string(at) +
                                 ")");
}

Status ParseCatalogueObject(const nlohmann::json& j, std::string_view key_field, CatalogueItem* out) {
  if (!j.is_object()) return Status::InvalidArgument("expected a JSON object");
  CatalogueItem item;
  item.attributes = nlohmann::json::object();
  const std::string key_name(key_field);
  auto id = j.find(key_name);
  if (id == j.end()) return Status::InvalidArgument("field '" + key_name + "' is missing");
  if (id->is_string()) {
    item.id = id->get<std::string>();
    MOSAIC_RETURN_IF_ERROR(RequireText(item.id, ("field '" + key_name + "'").c_str()));
  } else if (id->is_number_integer() && key_name == "id") {
    item.id = id->dump();  // exact: a signed or an unsigned 64-bit integer (larger ones parse as floats)
  } else {
    return Status::InvalidArgument("field '" + key_name + "' must be a string" + (key_name == "id" ? " or an integer" : ""));
  }
  for (auto& [field, value] : j.items()) {
    if (field == key_name || value.is_null()) continue;
    if (field == "title" || field == "description" || field == "kind") {
      if (!value.is_string()) return Status::InvalidArgument("field '" + field + "' must be a string");
      MOSAIC_RETURN_IF_ERROR(RefuseControlCharacters(value.get_ref<const std::string&>(), "field '" + field + "'",
                                                     /*allow_line_breaks=*/field == "description"));
      if (field == "kind" && value != "video" && value != "music") {
        return Status::InvalidArgument("field 'kind' must be \"video\" or \"music\"");
      }
      if (field == "title") {
        item.label = CollapseSpaces(value.get<std::string>());
        if (item.label.empty()) return Status::InvalidArgument("field 'title' is empty");
      }
      item.attributes[field] = value;
    } else if (value.is_string() || value.is_array()) {
      const std::string relation = RelationForField(field);
      if (Status s = ValidateRelationName(relation); !s.ok()) {
        return Status::InvalidArgument("field '" + field + "': " + s.message());
      }
      std::vector<std::string> values;
      if (value.is_string()) {
        values.push_back(value.get<std::string>());
      } else {
        for (const auto& v : value) {
          if (!v.is_string()) return Status::InvalidArgument("field '" + field + "' must hold only strings");
          values.push_back(v.get<std::string>());
        }
      }
      for (const auto& v : values) {
        MOSAIC_RETURN_IF_ERROR(RefuseControlCharacters(v, "field '" + field + "'"));
        std::string clean = CollapseSpaces(v);
        if (!clean.empty()) item.links.emplace_back(relation, std::move(clean));
      }
    } else if (value.is_number() || value.is_boolean()) {
      if (field == "year" && (!value.is_number_integer() || value.get<double>() < -9999 || value.get<double>() > 9999)) {
        return Status::InvalidArgument("field 'year' must be an integer between -9999 and 9999");
      }
      if (value.is_number_float() && !std::isfinite(value.get<double>())) {
        return Status::InvalidArgument("field '" + field + "' is not a finite number");
      }
      item.attributes[field] = value;
    } else {
      return Status::InvalidArgument("field '" + field + "' is an object; expected a string, array or number");
    }
  }
  *out = std::move(item);
  return Status::OK();
}

namespace {

// Turns the records of one file into rows. Formats with a header check it on the first record.
class RowParser {
 public:
  RowParser(ImportFormat format, const std::string& path) : format_(format) {
    if (format == ImportFormat::kInteractions) {
      const std::string ext = fs::path(path).extension().string();
      dialect_ = (ext == ".csv" || ext == ".CSV") ? Dialect::kCsv : Dialect::kTsv;
    } else if (format == ImportFormat::kMovielensRatings || format == ImportFormat::kMovielensMovies ||
               format == ImportFormat::kMovielensTags) {
      dialect_ = Dialect::kCsv;
    } else if (format == ImportFormat::kCatalogueJsonl) {
      dialect_ = Dialect::kLine;
    } else {
      dialect_ = Dialect::kTsv;
    }
  }

  Dialect dialect() const { return dialect_; }

  // Parses one record. Sets *row_ready when the record is data (not a header).
  Status Parse(const Record& r, Row* row, bool* row_ready) {
    *row_ready = false;
    const bool first = !seen_first_;
    seen_first_ = true;
    switch (format_) {
      case ImportFormat::kKgTriples: {
        MOSAIC_RETURN_IF_ERROR(Columns(r, 3, "head, relation, tail"));
        MOSAIC_RETURN_IF_ERROR(RequireText(r.fields[0], "head"));
        MOSAIC_RETURN_IF_ERROR(RequireText(r.fields[2], "tail"));
        MOSAIC_RETURN_IF_ERROR(ValidateRelationName(r.fields[1]));
        *row = TripleRow{r.fields[0], r.fields[1], r.fields[2]};
        break;
      }
      case ImportFormat::kKgLinks: {
        MOSAIC_RETURN_IF_ERROR(Columns(r, 2, "item, entity"));
        MOSAIC_RETURN_IF_ERROR(RequireText(r.fields[0], "item"));
        MOSAIC_RETURN_IF_ERROR(RequireText(r.fields[1], "entity"));
        *row = LinkRow{CollapseSpaces(r.fields[0]), r.fields[1]};
        break;
      }
      case ImportFormat::kLastfmPlays: {
        if (first) return Header(r, {"userID", "artistID", "weight"});
        MOSAIC_RETURN_IF_ERROR(Columns(r, 3, "userID, artistID, weight"));
        InteractionRow x;
        MOSAIC_RETURN_IF_ERROR(ParseId(r.fields[0], "userID", &x.user));
        MOSAIC_RETURN_IF_ERROR(ParseId(r.fields[1], "artistID", &x.item));
        MOSAIC_RETURN_IF_ERROR(ParseWeight(r.fields[2], "weight", &x.weight));
        *row = std::move(x);
        break;
      }
      case ImportFormat::kMovielensRatings: {
        if (first) return Header(r, {"userId", "movieId", "rating", "timestamp"});
        MOSAIC_RETURN_IF_ERROR(Columns(r, 4, "userId, movieId, rating, timestamp"));
        InteractionRow x;
        MOSAIC_RETURN_IF_ERROR(ParseId(r.fields[0], "userId", &x.user));
        MOSAIC_RETURN_IF_ERROR(ParseId(r.fields[1], "movieId", &x.item));
        MOSAIC_RETURN_IF_ERROR(ParseWeight(r.fields[2], "rating", &x.weight));
        MOSAIC_RETURN_IF_ERROR(ParseTimestamp(r.fields[3], "timestamp", &x.timestamp));
        *row = std::move(x);
        break;
      }
      case ImportFormat::kInteractions: {
        if (first) return GenericHeader(r);
        MOSAIC_RETURN_IF_ERROR(Columns(r, header_.size(), Join(header_, ", ")));
        InteractionRow x;
        x.user = CollapseSpaces(r.fields[col_user_]);
        x.item = CollapseSpaces(r.fields[col_item_]);
        MOSAIC_RETURN_IF_ERROR(RequireText(x.user, "user"));
        MOSAIC_RETURN_IF_ERROR(RequireText(x.item, "item"));
        if (col_weight_ >= 0) MOSAIC_RETURN_IF_ERROR(ParseWeight(r.fields[col_weight_], "weight", &x.weight));
        if (col_time_ >= 0) MOSAIC_RETURN_IF_ERROR(ParseTimestamp(r.fields[col_time_], "timestamp", &x.timestamp));
        *row = std::move(x);
        break;
      }
      case ImportFormat::kHetrecArtists: {
        if (first) return Header(r, {"id", "name", "url", "pictureURL"});
        MOSAIC_RETURN_IF_ERROR(Columns(r, 4, "id, name, url, pictureURL"));
        ItemRow item;
        MOSAIC_RETURN_IF_ERROR(ParseId(r.fields[0], "id", &item.id));
        MOSAIC_RETURN_IF_ERROR(RequireText(r.fields[1], "name"));
        item.label = CollapseSpaces(r.fields[1]);
        item.attributes = nlohmann::json::object();
        item.attributes["title"] = item.label;
        item.attributes["kind"] = "music";
        if (!r.fields[2].empty()) item.attributes["url"] = r.fields[2];
        *row = std::move(item);
        break;
      }
      case ImportFormat::kMovielensMovies: {
        if (first) return Header(r, {"movieId", "title", "genres"});
        MOSAIC_RETURN_IF_ERROR(Columns(r, 3, "movieId, title, genres"));
        ItemRow item;
        MOSAIC_RETURN_IF_ERROR(ParseId(r.fields[0], "movieId", &item.id));
        MOSAIC_RETURN_IF_ERROR(RequireText(r.fields[1], "title"));
        item.label = CollapseSpaces(r.fields[1]);
        item.attributes = nlohmann::json::object();
        item.attributes["title"] = item.label;
        item.attributes["kind"] = "video";
        const std::string& genres = r.fields[2];
        if (genres != "(no genres listed)") {
          size_t start = 0;
          while (start <= genres.size()) {
            size_t bar = genres.find('|', start);
            if (bar == std::string::npos) bar = genres.size();
            std::string g = CollapseSpaces(genres.substr(start, bar - start));
            if (!g.empty()) item.links.emplace_back("genre", g);
            start = bar + 1;
          }
        }
        *row = std::move(item);
        break;
      }
      case ImportFormat::kMovielensTags: {
        if (first) return Header(r, {"userId", "movieId", "tag", "timestamp"});
        MOSAIC_RETURN_IF_ERROR(Columns(r, 4, "userId, movieId, tag, timestamp"));
        TagRow t;
        MOSAIC_RETURN_IF_ERROR(ParseId(r.fields[0], "userId", &t.user));
        MOSAIC_RETURN_IF_ERROR(ParseId(r.fields[1], "movieId", &t.item));
        MOSAIC_RETURN_IF_ERROR(RequireText(r.fields[2], "tag"));
        t.tag = CollapseSpaces(r.fields[2]);
        MOSAIC_RETURN_IF_ERROR(ParseTimestamp(r.fields[3], "timestamp", &t.timestamp));
        *row = std::move(t);
        break;
      }
      case ImportFormat::kCatalogueJsonl:
        MOSAIC_RETURN_IF_ERROR(ParseCatalogueLine(r.fields[0], row));
        break;
    }
    *row_ready = true;
    return Status::OK();
  }

 private:
  static Status Columns(const Record& r, size_t n, const std::string& names) {
    if (r.fields.size() != n) {
      return Status::InvalidArgument("expected " + std::to_string(n) + " columns (" + names + "), found " +
                                     std::to_string(r.fields.size()));
    }
    return Status::OK();
  }

  Status Header(const Record& r, const std::vector<std::string>& expected) const {
    if (r.fields != expected) {
      return Status::InvalidArgument("expected the header '" + Join(expected, dialect_ == Dialect::kCsv ? "," : "\\t") +
                                     "', found '" + Join(r.fields, dialect_ == Dialect::kCsv ? "," : "\\t") +
                                     "' (is --format right?)");
    }
    return Status::OK();
  }

  Status GenericHeader(const Record& r) {
    header_ = r.fields;
    for (size_t i = 0; i < header_.size(); ++i) {
      const std::string& h = header_[i];
      int* slot = h == "user" ? &col_user_ : h == "item" ? &col_item_ : h == "weight" ? &col_weight_
                : h == "timestamp" ? &col_time_ : nullptr;
      if (!slot) {
        return Status::InvalidArgument("unknown column '" + h + "' in header (expected user, item, weight, timestamp)");
      }
      if (*slot >= 0) return Status::InvalidArgument("column '" + h + "' appears twice in the header");
      *slot = int(i);
    }
    if (col_user_ < 0 || col_item_ < 0) {
      return Status::InvalidArgument("the header must name a 'user' and an 'item' column, found '" +
                                     Join(header_, ",") + "'");
    }
    return Status::OK();
  }

  static Status ParseCatalogueLine(const std::string& line, Row* row) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number beyond a double's range
      std::string what = e.what();
      const size_t colon = what.find(": ");
      return Status::InvalidArgument("invalid JSON: " + (colon == std::string::npos ? what : what.substr(colon + 2)));
    }
    ItemRow item;
    MOSAIC_RETURN_IF_ERROR(ParseCatalogueObject(j, "id", &item));
    *row = std::move(item);
    return Status::OK();
  }

  ImportFormat format_;
  Dialect dialect_;
  bool seen_first_ = false;
  std::vector<std::string> header_;
  int col_user_ = -1, col_item_ = -1, col_weight_ = -1, col_time_ = -1;
};

// ---------------------------------------------------------------------------------------------
// Writer: applies rows to a store through batches.

class RowWriter {
 public:
  RowWriter(store::Store* store, const TextFeatureHook* text) : store_(store), text_(text) {}

  Status Begin() { return store_->BeginBatch(&batch_); }

  Status Apply(const Row& row) { return std::visit([this](const auto& r) { return ApplyRow(r); }, row); }

  // Brings the text features of the items this batch described up to date, then commits: an
  // item and its text embedding land together.
  Status Commit(uint64_t* text_features) {
    if (text_ && !touched_items_.empty()) {
      size_t encoded = 0;
      MOSAIC_RETURN_IF_ERROR(UpdateTextFeatures(batch_.get(), touched_items_, *text_, &encoded));
      *text_features += encoded;
    }
    touched_items_.clear();
    return batch_->Commit();
  }

 private:
  Status ApplyRow(const InteractionRow& r) {
    store::Interaction x;
    MOSAIC_RETURN_IF_ERROR(Node(NodeKind::kUser, r.user, &x.user));
    MOSAIC_RETURN_IF_ERROR(Node(NodeKind::kItem, r.item, &x.item));
    x.weight = r.weight;
    x.timestamp = r.timestamp;
    return batch_->PutInteraction(x);
  }

  Status ApplyRow(const ItemRow& r) {
    NodeId item = 0;
    MOSAIC_RETURN_IF_ERROR(WriteCatalogueItem(batch_.get(), r, &item));
    touched_items_.push_back(item);
    return Status::OK();
  }

  Status ApplyRow(const TagRow& r) {
    store::Interaction x;
    x.kind = store::InteractionKind::kTagApplication;
    x.timestamp = r.timestamp;
    RelationId rel = 0;
    MOSAIC_RETURN_IF_ERROR(Node(NodeKind::kUser, r.user, &x.user));
    MOSAIC_RETURN_IF_ERROR(Node(NodeKind::kItem, r.item, &x.item));
    MOSAIC_RETURN_IF_ERROR(Relation("tag", &rel));
    MOSAIC_RETURN_IF_ERROR(UpsertEntity(batch_.get(), EntityKey("tag", r.tag), r.tag, &x.tag));
    MOSAIC_RETURN_IF_ERROR(batch_->AddEdge(x.item, rel, x.tag));
    touched_items_.push_back(x.item);  // its tags are part of its text
    return batch_->PutInteraction(x);
  }

  Status ApplyRow(const TripleRow& r) {
    NodeId head = 0, tail = 0;
    RelationId rel = 0;
    MOSAIC_RETURN_IF_ERROR(KgEntity(r.head, &head));
    MOSAIC_RETURN_IF_ERROR(KgEntity(r.tail, &tail));
    MOSAIC_RETURN_IF_ERROR(Relation(r.relation, &rel));
    return batch_->AddEdge(head, rel, tail);
  }

  Status ApplyRow(const LinkRow& r) {
    NodeId item = 0;
    MOSAIC_RETURN_IF_ERROR(batch_->UpsertNode(NodeKind::kItem, r.item, "", &item));
    Status s = batch_->AddAlias(NodeKind::kEntity, NormalizeKey(r.entity), item);
    if (s.IsInvalidArgument()) {
      return Status::InvalidArgument("entity '" + r.entity + "' is already a separate node or linked to another item; "
                                     "import the links file before or with the triples that use it");
    }
    return s;
  }

  // The node (kind, key) without a label, created when absent. Ids never change once given,
  // so a bounded cache of them spares the store a lookup for every row of a plays file.
  Status Node(NodeKind kind, const std::string& key, NodeId* id) {
    auto& cache = node_cache_[kind == NodeKind::kUser ? 0 : 1];
    auto it = cache.find(key);
    if (it != cache.end()) {
      *id = it->second;
      return Status::OK();
    }
    MOSAIC_RETURN_IF_ERROR(batch_->UpsertNode(kind, key, "", id));
    if (cache.size() >= kNodeCacheLimit) cache.clear();
    cache.emplace(key, *id);
    return Status::OK();
  }

  Status Relation(const std::string& name, RelationId* id) {
    auto it = relations_.find(name);
    if (it != relations_.end()) {
      *id = it->second;
      return Status::OK();
    }
    MOSAIC_RETURN_IF_ERROR(batch_->UpsertRelation(name, id));
    relations_.emplace(name, *id);
    return Status::OK();
  }


  // A KG token: "ns:Value" gets the label "Value"; bare ids (KGCN's numbers) get none.
  Status KgEntity(const std::string& token, NodeId* id) {
    const std::string clean = CollapseSpaces(token);
    const size_t colon = clean.find(':');
    const std::string label = colon == std::string::npos ? "" : clean.substr(colon + 1);
    return UpsertEntity(batch_.get(), NormalizeKey(clean), label, id);
  }

  store::Store* store_;
  const TextFeatureHook* text_;
  std::vector<NodeId> touched_items_;
  std::unique_ptr<store::Batch> batch_;
  std::map<std::string, RelationId> relations_;
  static constexpr size_t kNodeCacheLimit = 1 << 20;
  std::unordered_map<std::string, NodeId> node_cache_[2];  // users, items
};

struct Input {
  std::string path;
  ImportFormat format;
  const std::string_view* text = nullptr;  ///< when set, the contents of `path`, not read from disk
};

// Reads every record of `input`, calling fn(row) for each data row.
template <typename Fn>
Status ForEachRow(const Input& input, uint64_t* bytes, Fn&& fn) {
  RowParser parser(input.format, input.path);
  RecordReader reader;
  MOSAIC_RETURN_IF_ERROR(input.text ? reader.OpenText(input.path, *input.text, parser.dialect())
                                    : reader.Open(input.path, parser.dialect()));
  uint64_t reported = 0;
  for (;;) {
    Record record;
    bool eof = false;
    MOSAIC_RETURN_IF_ERROR(reader.Next(&record, &eof));
    *bytes += reader.bytes_read() - reported;
    reported = reader.bytes_read();
    if (eof) return Status::OK();
    Row row;
    bool ready = false;
    Status s = parser.Parse(record, &row, &ready);
    if (!s.ok()) return reader.Error(record.line, s.message());
    if (ready) {
      s = fn(row);
      if (!s.ok()) return s.WithContext(input.path + ":" + std::to_string(record.line) + ": ");
    }
  }
}

Status CheckLink(const store::ReadView& view, const LinkRow& link,
                 std::unordered_map<std::string, std::string>* linked) {
  const std::string entity = NormalizeKey(link.entity);
  auto [it, added] = linked->emplace(entity, link.item);
  if (!added && it->second != link.item) {
    return Status::InvalidArgument("entity '" + link.entity + "' is linked to item '" + it->second +
                                   "' earlier in the file and to item '" + link.item + "' here");
  }
  NodeId entity_node = 0, item_node = 0;
  Status s = view.FindNode(NodeKind::kEntity, entity, &entity_node);
  if (s.IsNotFound()) return Status::OK();
  MOSAIC_RETURN_IF_ERROR(s);
  s = view.FindNode(NodeKind::kItem, link.item, &item_node);
  if (s.ok() && item_node == entity_node) return Status::OK();  // the same link, imported before
  if (!s.ok() && !s.IsNotFound()) return s;
  return Status::InvalidArgument("entity '" + link.entity +
                                 "' is already a separate node or linked to another item; "
                                 "import the links file before or with the triples that use it");
}

}  // namespace

Status CheckImportText(ImportFormat format, std::string_view text, const std::string& name, uint64_t* rows) {
  *rows = 0;
  uint64_t bytes = 0;
  return ForEachRow(Input{name, format, &text}, &bytes, [&](const Row&) {
    ++*rows;
    return Status::OK();
  });
}

Status Import(store::Store* store, const ImportRequest& request, const ImportProgressFn& progress,
              ImportReport* report) {
  *report = ImportReport();
  if (request.files.empty()) return Status::InvalidArgument("no input file given");
  std::vector<Input> inputs;
  if (!request.links_file.empty()) {
    if (request.format != ImportFormat::kKgTriples) {
      return Status::InvalidArgument("--links only goes with --format kg");
    }
    inputs.push_back({request.links_file, ImportFormat::kKgLinks});
  }
  for (const auto& f : request.files) inputs.push_back({f, request.format});

  ImportProgress p;
  for (const auto& in : inputs) {
    std::error_code ec;
    const auto size = fs::file_size(in.path, ec);
    if (!ec) p.bytes_total += 2 * size;
  }
  report->bytes = p.bytes_total / 2;
  auto tick = [&](uint64_t n) {
    if (progress && n % 4096 == 0) progress(p);
  };

  // Pass 1: check every line of every input before writing anything. Links are also checked
  // against the store and each other (an entity names one node), the one check that needs
  // more than the line; links files hold one line per item, so remembering them is cheap.
  auto view = store->NewReadView();
  std::unordered_map<std::string, std::string> linked;  // entity key -> item key
  for (const auto& in : inputs) {
    MOSAIC_RETURN_IF_ERROR(ForEachRow(in, &p.bytes_done, [&](const Row& row) {
      tick(++report->rows);
      if (const auto* link = std::get_if<LinkRow>(&row)) return CheckLink(*view, *link, &linked);
      return Status::OK();
    }));
  }
  view.reset();

  // Pass 2: write, a batch of whole rows at a time.
  p.pass = 2;
  RowWriter writer(store, request.text_features);
  MOSAIC_RETURN_IF_ERROR(writer.Begin());
  size_t in_batch = 0;
  for (const auto& in : inputs) {
    MOSAIC_RETURN_IF_ERROR(ForEachRow(in, &p.bytes_done, [&](const Row& row) {
      MOSAIC_RETURN_IF_ERROR(writer.Apply(row));
      ++p.rows;
      if (++in_batch >= request.rows_per_batch) {
        MOSAIC_RETURN_IF_ERROR(writer.Commit(&report->text_features));
        ++report->batches;
        in_batch = 0;
      }
      tick(p.rows);
      return Status::OK();
    }));
  }
  if (in_batch > 0) {
    MOSAIC_RETURN_IF_ERROR(writer.Commit(&report->text_features));
    ++report->batches;
  }
  if (progress) progress(p);
  return Status::OK();
}

}  // namespace mosaic::graph
