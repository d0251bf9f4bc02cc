// The failure both twin test files throw (caught and printed by twin_tests.cpp's main).
#pragma once
#include <string>

struct TestFailure {
  std::string msg;
};
