// MediaError: what modalities/ throws when a file cannot be analysed (it depends on no other
// folder of Mosaic, so it reports with an exception; jobs/ turns it into a Status).
#pragma once

#include <stdexcept>
#include <string>

namespace mosaic::modalities {

class MediaError : public std::runtime_error {
 public:
  MediaError(const std::string& path, const std::string& reason)
      : std::runtime_error(path + ": " + reason), path_(path), reason_(reason) {}
  const std::string& path() const { return path_; }      ///< the file
  const std::string& reason() const { return reason_; }  ///< why, with FFmpeg's words when it had any

 private:
  std::string path_;
  std::string reason_;
};

}  // namespace mosaic::modalities
