// basic_english tokens of UTF-8 texts, counted or looked up in a vocabulary, for textrnn/text/encoding.py.
//
// Texts with characters beyond ASCII arrive lowercased by Python's str.lower(), and ASCII letters
// are lowercased here, so what is left of textrnn/text/tokenizer.py's rules is byte work, in their order:
//   1. '"' is deleted;
//   2. "<br />" in what remains is a space (leftmost first, not overlapping, as str.replace);
//   3. ' . , ( ) ! ? are tokens of their own; ; : are spaces;
//   4. tokens are split on whitespace, what Python's str.split() splits on (whitespace_length).
// Every other byte belongs to a token, so a token is whole UTF-8 characters. The Python side checks
// these tokens against tokenizer.tokenize on a probe text before it uses them
// (fast_tokenizer._agrees_with_python).
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

namespace {

// The length of the whitespace character at p, 0 if it is none. In valid UTF-8 the bytes tested
// first (0x09..0x20, 0xC2, 0xE1..0xE3) are never inside a character, so a scan may go byte by byte.
inline int whitespace_length(const unsigned char* p, const unsigned char* end) {
    const unsigned char c = p[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return 1;
    if (c < 0xC2) return 0;
    const std::ptrdiff_t left = end - p;
    if (c == 0xC2) return left >= 2 && (p[1] == 0x85 || p[1] == 0xA0) ? 2 : 0;  // U+0085, U+00A0
    if (left < 3) return 0;
    if (c == 0xE1) return p[1] == 0x9A && p[2] == 0x80 ? 3 : 0;  // U+1680
    if (c == 0xE2 && p[1] == 0x80) {  // U+2000..U+200A, U+2028, U+2029, U+202F
        const unsigned char d = p[2];
        return (d >= 0x80 && d <= 0x8A) || d == 0xA8 || d == 0xA9 || d == 0xAF ? 3 : 0;
    }
    if (c == 0xE2 && p[1] == 0x81) return p[2] == 0x9F ? 3 : 0;  // U+205F
    if (c == 0xE3) return p[1] == 0x80 && p[2] == 0x80 ? 3 : 0;  // U+3000
    return 0;
}

// What a byte is to the tokenizer; kMaybe bytes need a look at what follows.
enum ByteClass : unsigned char { kToken = 0, kOwnToken = 1, kSpace = 2, kMaybe = 3 };

struct ByteClasses {
    unsigned char of[256];
    constexpr ByteClasses() : of() {
        for (int c = 0; c < 256; ++c) of[c] = kToken;
        for (int c : {'\'', '.', ',', '(', ')', '!', '?'}) of[c] = kOwnToken;
        for (int c = 0x09; c <= 0x0D; ++c) of[c] = kSpace;
        for (int c = 0x1C; c <= 0x1F; ++c) of[c] = kSpace;
        for (int c : {' ', ';', ':'}) of[c] = kSpace;
        for (int c : {int{'<'}, 0xC2, 0xE1, 0xE2, 0xE3}) of[c] = kMaybe;
    }
};
constexpr ByteClasses kClasses;

// Calls emit(pointer, length) for each token of one text, in order. ASCII letters are lowercased
// here (Python lowercases the texts with other characters first: lowering those again changes nothing).
template <typename Emit>
void tokenize(const unsigned char* text, int64_t size, std::vector<unsigned char>& scratch, Emit&& emit) {
    if (scratch.size() < static_cast<size_t>(size)) scratch.resize(size);
    unsigned char* const out = scratch.data();
    int64_t kept = 0;
    for (int64_t i = 0; i < size; ++i) {  // rule 1: '"' goes, before "<br />" is looked for
        const unsigned char c = text[i];
        out[kept] = static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
        kept += c != '"';
    }
    const unsigned char* p = out;
    const unsigned char* const end = out + kept;
    const unsigned char* start = nullptr;  // the current token's first byte
    while (p < end) {
        const unsigned char kind = kClasses.of[*p];
        if (kind == kToken) {
            if (start == nullptr) start = p;
            do ++p;
            while (p < end && kClasses.of[*p] == kToken);
            continue;
        }
        int separator = 1;
        if (kind == kMaybe) {
            separator = *p == '<' ? (end - p >= 6 && std::memcmp(p, "<br />", 6) == 0 ? 6 : 0) : whitespace_length(p, end);
            if (separator == 0) {  // an ordinary byte after all
                if (start == nullptr) start = p;
                ++p;
                continue;
            }
        }
        if (start != nullptr) {
            emit(start, p - start);
            start = nullptr;
        }
        if (kind == kOwnToken) emit(p, 1);
        p += separator;
    }
    if (start != nullptr) emit(start, end - start);
}

// Tokens (byte strings) in the order first added, each with a value: its id, or its count.
// An open-addressing hash table: a slot holds an entry's hash (high 32 bits) and index (low 32
// bits), so most probes are decided without reading the token's bytes.
class Table {
  public:
    Table() : slots_(1024, kEmpty) {}

    int64_t size() const { return static_cast<int64_t>(values_.size()); }

    int64_t find(const unsigned char* token, int64_t length) const {
        const uint64_t hash = hash_of(token, length);
        for (uint64_t slot = hash & mask();; slot = (slot + 1) & mask()) {
            const uint64_t held = slots_[slot];
            if (held == kEmpty) return -1;
            if ((held >> 32) == (hash >> 32) && same(held & 0xFFFFFFFFu, token, length)) return held & 0xFFFFFFFFu;
        }
    }

    // The entry of token, added with value `initial` where it is new.
    int64_t find_or_add(const unsigned char* token, int64_t length, int64_t initial) {
        const uint64_t hash = hash_of(token, length);
        uint64_t slot = hash & mask();
        for (;; slot = (slot + 1) & mask()) {
            const uint64_t held = slots_[slot];
            if (held == kEmpty) break;
            if ((held >> 32) == (hash >> 32) && same(held & 0xFFFFFFFFu, token, length)) return held & 0xFFFFFFFFu;
        }
        if (size() >= kMaxEntries) throw std::bad_alloc();
        const int64_t entry = size();
        starts_.push_back(static_cast<int64_t>(bytes_.size()));
        bytes_.insert(bytes_.end(), token, token + length);
        values_.push_back(initial);
        slots_[slot] = (hash & 0xFFFFFFFF00000000ULL) | static_cast<uint64_t>(entry);
        if (2 * static_cast<uint64_t>(size()) > slots_.size()) grow();
        return entry;
    }

    // Adds the values of other's tokens (another table) to their entries here, other's new tokens
    // last, in other's order: merging tables of consecutive texts in order gives one table's order.
    void add_values_of(const Table& other) {
        for (int64_t entry = 0; entry < other.size(); ++entry) {
            const unsigned char* token = other.bytes_.data() + other.starts_[entry];
            values_[find_or_add(token, other.end_of(entry) - other.starts_[entry], 0)] += other.values_[entry];
        }
    }

    int64_t& value(int64_t entry) { return values_[entry]; }
    int64_t value(int64_t entry) const { return values_[entry]; }

    // The tokens joined by '\n' (a token never holds whitespace), and the values, in entry order.
    int64_t joined_size() const { return static_cast<int64_t>(bytes_.size()) + size(); }
    void export_to(char* joined, int64_t* values) const {
        for (int64_t entry = 0; entry < size(); ++entry) {
            const int64_t length = end_of(entry) - starts_[entry];
            std::memcpy(joined, bytes_.data() + starts_[entry], length);
            joined += length;
            *joined++ = '\n';
            values[entry] = values_[entry];
        }
    }

  private:
    static constexpr uint64_t kEmpty = ~0ULL;
    static constexpr int64_t kMaxEntries = 0x7FFFFFFF;

    static uint64_t hash_of(const unsigned char* token, int64_t length) {
        // Eight bytes at a time (most tokens are shorter), each word multiplied in, then mixed (murmur3's finalizer).
        uint64_t hash = 0x9E3779B97F4A7C15ULL ^ static_cast<uint64_t>(length);
        for (; length >= 8; token += 8, length -= 8) {
            uint64_t word;
            std::memcpy(&word, token, 8);
            hash = (hash ^ word) * 0xff51afd7ed558ccdULL;
            hash ^= hash >> 32;
        }
        if (length > 0) {
            uint64_t word = 0;
            std::memcpy(&word, token, length);
            hash = (hash ^ word) * 0xff51afd7ed558ccdULL;
        }
        hash ^= hash >> 33;
        hash *= 0xc4ceb9fe1a85ec53ULL;
        return hash ^ (hash >> 33);
    }
    uint64_t mask() const { return slots_.size() - 1; }
    int64_t end_of(int64_t entry) const {
        return entry + 1 < size() ? starts_[entry + 1] : static_cast<int64_t>(bytes_.size());
    }
    bool same(int64_t entry, const unsigned char* token, int64_t length) const {
        return end_of(entry) - starts_[entry] == length && std::memcmp(bytes_.data() + starts_[entry], token, length) == 0;
    }
    void grow() {
        std::vector<uint64_t> slots(slots_.size() * 2, kEmpty);
        const uint64_t new_mask = slots.size() - 1;
        for (uint64_t held : slots_) {
            if (held == kEmpty) continue;
            const int64_t entry = held & 0xFFFFFFFFu;
            const unsigned char* token = bytes_.data() + starts_[entry];
            uint64_t slot = hash_of(token, end_of(entry) - starts_[entry]) & new_mask;
            while (slots[slot] != kEmpty) slot = (slot + 1) & new_mask;
            slots[slot] = held;
        }
        slots_.swap(slots);
    }

    std::vector<unsigned char> bytes_;
    std::vector<int64_t> starts_;
    std::vector<int64_t> values_;
    std::vector<uint64_t> slots_;
};

const unsigned char* bytes(const char* data) { return reinterpret_cast<const unsigned char*>(data); }

// Calls keep(i, token, length) for each of the n tokens of `joined` (each followed by '\n'), in
// order, while it returns true. False if it returned false or `joined` holds fewer than n tokens.
template <typename Keep>
bool for_each_token(const char* joined, int64_t size, int64_t n, Keep&& keep) {
    const unsigned char* p = bytes(joined);
    const unsigned char* const end = p + size;
    for (int64_t i = 0; i < n; ++i) {
        const unsigned char* stop = static_cast<const unsigned char*>(std::memchr(p, '\n', end - p));
        if (stop == nullptr || !keep(i, p, stop - p)) return false;
        p = stop + 1;
    }
    return true;
}

}  // namespace

extern "C" {

void* textrnn_table_new() { return new (std::nothrow) Table(); }

void textrnn_table_free(void* table) { delete static_cast<Table*>(table); }

int64_t textrnn_table_size(const void* table) { return static_cast<const Table*>(table)->size(); }

int64_t textrnn_table_joined_size(const void* table) { return static_cast<const Table*>(table)->joined_size(); }

void textrnn_table_export(const void* table, char* joined, int64_t* values) {
    static_cast<const Table*>(table)->export_to(joined, values);
}

// Adds the n tokens of `joined` (each followed by '\n'), the i-th with value i. Returns 0; -1 if a
// token was there already (a vocabulary holds each token once) or `joined` is short; -2 out of memory.
int textrnn_table_add_tokens(void* table, const char* joined, int64_t size, int64_t n) try {
    Table& t = *static_cast<Table*>(table);
    const bool whole = for_each_token(joined, size, n, [&](int64_t i, const unsigned char* token, int64_t length) {
        const int64_t before = t.size();
        return t.find_or_add(token, length, i) == before;  // else it was there already
    });
    return whole ? 0 : -1;
} catch (const std::bad_alloc&) {
    return -2;
}

// Writes to `which` the index of each of the n texts that holds a byte above 0x7F; returns how many.
int64_t textrnn_non_ascii(const char* data, const int64_t* offsets, int64_t n, int64_t* which) {
    int64_t found = 0;
    for (int64_t i = 0; i < n; ++i) {
        unsigned char any = 0;
        for (int64_t j = offsets[i]; j < offsets[i + 1]; ++j) any |= static_cast<unsigned char>(data[j]);
        if (any & 0x80) which[found++] = i;
    }
    return found;
}

// Adds the counts of table `other` to those of table `counts` (two tables). Returns 0; -2 out of memory.
int textrnn_table_add_table(void* counts, const void* other) try {
    static_cast<Table*>(counts)->add_values_of(*static_cast<const Table*>(other));
    return 0;
} catch (const std::bad_alloc&) {
    return -2;
}

// Counts the tokens of n texts (text i is data[offsets[i] .. offsets[i + 1])). Returns 0; -2 out of memory.
int textrnn_count(void* counts, const char* data, const int64_t* offsets, int64_t n) try {
    Table& t = *static_cast<Table*>(counts);
    std::vector<unsigned char> scratch;
    for (int64_t i = 0; i < n; ++i) {
        tokenize(bytes(data) + offsets[i], offsets[i + 1] - offsets[i], scratch,
                 [&](const unsigned char* token, int64_t length) { ++t.value(t.find_or_add(token, length, 0)); });
    }
    return 0;
} catch (const std::bad_alloc&) {
    return -2;
}

// Token ids of n texts (text i is data[offsets[i] .. offsets[i + 1])), `unknown` for a token not in
// vocab, back to back in ids (room for `capacity`); lengths[i] is text i's number of tokens.
// Returns the number of ids written; -3 if they need more than `capacity` (a token is at least one
// byte: offsets[n] - offsets[0] is always enough); -2 out of memory.
int64_t textrnn_encode(const void* vocab, const char* data, const int64_t* offsets, int64_t n, int32_t unknown,
                       int32_t* ids, int64_t capacity, int64_t* lengths) try {
    const Table& t = *static_cast<const Table*>(vocab);
    std::vector<unsigned char> scratch;
    int64_t written = 0;
    bool full = false;
    for (int64_t i = 0; i < n && !full; ++i) {
        const int64_t before = written;
        tokenize(bytes(data) + offsets[i], offsets[i + 1] - offsets[i], scratch,
                 [&](const unsigned char* token, int64_t length) {
                     if (written == capacity) {
                         full = true;
                         return;
                     }
                     const int64_t entry = t.find(token, length);
                     ids[written++] = entry < 0 ? unknown : static_cast<int32_t>(t.value(entry));
                 });
        lengths[i] = written - before;
    }
    return full ? -3 : written;
} catch (const std::bad_alloc&) {
    return -2;
}

}  // extern "C"
