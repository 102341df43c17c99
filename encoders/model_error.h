#pragma once
#include <stdexcept>
#include <string>
namespace mosaic::encoders {
// What encoders/ throws when a model cannot be loaded or used (it depends on no other folder of Mosaic).
class ModelError : public std::runtime_error { public: explicit ModelError(const std::string& what) : std::runtime_error(what) {} };
}
