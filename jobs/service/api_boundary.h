// The error boundary of the model-service layer, after LightGBM's API_BEGIN/API_END: every entry of
// the model library and every HTTP handler runs its body between these, exactly once, so that no
// exception crosses the library boundary or reaches the server's threads. Expected failures are
// Statuses already; what arrives here is a bug or an exhausted resource, reported as kInternal.
//
//   Status Entry(...) {
//     MOSAIC_API_BEGIN();
//     return DoTheWork(...);
//     MOSAIC_API_END();
//   }
#pragma once

#include <exception>
#include <new>
#include <string>

#include "store/status.h"

namespace mosaic::jobs::service {

// The Status of the exception being handled (call only inside a catch block).
inline Status CurrentExceptionStatus() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return Status::Internal("out of memory");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("internal error: ") + e.what());
  } catch (...) {
    return Status::Internal("internal error: unknown exception");
  }
}

}  // namespace mosaic::jobs::service

#define MOSAIC_API_BEGIN() try {
#define MOSAIC_API_END()                                     \
  }                                                          \
  catch (...) {                                              \
    return ::mosaic::jobs::service::CurrentExceptionStatus(); \
  }
