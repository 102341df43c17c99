// Import: streams catalogue, interaction and knowledge-graph files into a store.
//
// Every file is read twice, line by line (memory does not grow with the file): the first
// pass checks every line and stops at the first malformed one with "file:line: what is
// wrong" before anything is written; the second pass writes in batches of whole rows. Rows
// are upserts, so importing a file again leaves the store as it was, and an import cut off
// half-way (a crash, a kill) is completed by running it again.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "graph/catalogue.h"
#include "store/status.h"

namespace mosaic::store {
class Store;
}

namespace mosaic::graph {

struct TextFeatureHook;

enum class ImportFormat {
  kKgTriples,         ///< head<TAB>relation<TAB>tail; items aligned through ImportRequest::links_file
  kKgLinks,           ///< item<TAB>entity: the item is that KG entity (KGCN's item_index2entity_id.txt)
  kLastfmPlays,       ///< Last.FM user_artists.dat: userID<TAB>artistID<TAB>weight, with header
  kMovielensRatings,  ///< MovieLens ratings.csv: userId,movieId,rating,timestamp
  kInteractions,      ///< generic TSV (or CSV for *.csv) with a header naming user,item[,weight][,timestamp]
  kHetrecArtists,     ///< HetRec artists.dat: id<TAB>name<TAB>url<TAB>pictureURL
  kMovielensMovies,   ///< MovieLens movies.csv: movieId,title,genres (genres become KG entities)
  kMovielensTags,     ///< MovieLens tags.csv: userId,movieId,tag,timestamp (tags become KG entities)
  kCatalogueJsonl,    ///< one JSON object per line: id, title, description, kind, year, tags, artist, ...
};

struct ImportFormatInfo {
  ImportFormat format;      ///< the format
  const char* name;         ///< its name on the command line
  const char* description;  ///< one line for --help
};

// All formats, in the order --help lists them.
const std::vector<ImportFormatInfo>& ImportFormats();

// On success stores the format called `name` in *format; otherwise returns InvalidArgument
// listing the known names.
Status ParseImportFormat(std::string_view name, ImportFormat* format);

struct ImportRequest {
  ImportFormat format = ImportFormat::kKgTriples;  ///< how to read `files`
  std::vector<std::string> files;                  ///< input files, imported in order
  std::string links_file;      ///< kKgTriples only: item<TAB>entity lines (KGCN's item_index2entity_id.txt)
  size_t rows_per_batch = 20000;  ///< rows committed together in the writing pass
  const TextFeatureHook* text_features = nullptr;  ///< when set, items described by the rows get text embeddings
};

struct ImportProgress {
  int pass = 1;              ///< 1 = checking, 2 = writing
  uint64_t bytes_done = 0;   ///< over both passes
  uint64_t bytes_total = 0;  ///< twice the size of all inputs
  uint64_t rows = 0;         ///< rows written so far
};
using ImportProgressFn = std::function<void(const ImportProgress&)>;

struct ImportReport {
  uint64_t rows = 0;           ///< data rows read (headers and blank lines excluded)
  uint64_t bytes = 0;          ///< size of the inputs
  uint64_t batches = 0;        ///< write batches committed
  uint64_t text_features = 0;  ///< text embeddings computed (unchanged texts are not redone)
};

// Imports the request's files into `store`. Returns InvalidArgument "file:line: reason" for the
// first malformed line (nothing written), NotFound/IOError for unreadable files, or the
// store's error. `progress` may be empty.
Status Import(store::Store* store, const ImportRequest& request, const ImportProgressFn& progress,
              ImportReport* report);

// Checks `text` as the contents of a file of `format` called `name` (its extension picks CSV or TSV
// for kInteractions) line by line, as Import's first pass does, without a store: nothing is read
// from disk or written, and links are not checked against a store. On success stores the number of
// data rows in *rows; otherwise returns Import's InvalidArgument "name:line: reason". For tests and
// the fuzzers (tests/fuzz/).
Status CheckImportText(ImportFormat format, std::string_view text, const std::string& name, uint64_t* rows);

// The largest interaction weight (a play count, rating or strength) accepted anywhere: import, POST
// /interactions. Sums of weights stay exact far beyond any real history below it.
constexpr double kMaxWeight = 1e9;

// Returns InvalidArgument "WHAT contains a control character (U+00NN at byte B)" when `text` holds a
// control character (C0, DEL, C1); with `allow_line_breaks`, tab, LF and CR are allowed (descriptions).
// Ids, titles, entity names and tags are refused with one: a terminal that prints them must not be
// driven by them.
Status RefuseControlCharacters(std::string_view text, const std::string& what, bool allow_line_breaks = false);

// Key of the entity that a catalogue field value names: "<relation>:<normalised value>",
// e.g. EntityKey("genre", "Science  Fiction") == "genre:science fiction".
std::string EntityKey(std::string_view relation, std::string_view value);

// Reads one catalogue object by the jsonl format's rules: `key_field` ("id" in catalogues,
// "path" in ingest metadata) names the item; title, description and kind (video|music) are
// text attributes; numbers and booleans are attributes; every other string or list of strings
// is a KG link by the field's relation. Ids, titles and link values must hold no control character
// (a description may hold tabs and line breaks); "year" is an integer in -9999..9999. Returns
// InvalidArgument naming the offending field: its message starts with "field 'NAME'" (or is
// "expected a JSON object").
Status ParseCatalogueObject(const nlohmann::json& object, std::string_view key_field, CatalogueItem* item);

// Singular relation name for a catalogue field ("tags" -> "tag", "genres" -> "genre").
std::string RelationForField(std::string_view field);

// Returns InvalidArgument unless `name` is a usable relation name: 1-128 characters from
// letters, digits and . _ : / - , and not the reserved `interacted`.
Status ValidateRelationName(std::string_view name);

}  // namespace mosaic::graph
