#include "config/yaml_tree.h"

#include <yaml.h>

namespace ls::config::detail {

namespace {
SourcePos to_pos(const yaml_mark_t& mark) {
    return SourcePos{static_cast<int>(mark.line) + 1, static_cast<int>(mark.column) + 1};
}

/* Line/column of a byte offset (libyaml reader errors only give an offset). */
SourcePos pos_of_offset(std::string_view text, size_t offset) {
    SourcePos p{1, 1};
    for (size_t i = 0; i < offset && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++p.line;
            p.col = 1;
        } else {
            ++p.col;
        }
    }
    return p;
}
} // namespace

Error diag_error(const std::string& file, SourcePos pos, std::string message) {
    return make_error(Diagnostic{file, pos, std::move(message)}.render());
}

Result<Tree> parse_yaml(const std::string& text, const std::string& file) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return make_error(file + ": cannot initialize parser");
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());

    auto parser_error = [&]() {
        std::string problem = parser.problem ? parser.problem : "invalid YAML";
        SourcePos pos = parser.error == YAML_READER_ERROR
                            ? pos_of_offset(text, parser.problem_offset)
                            : to_pos(parser.problem_mark);
        // libyaml says "found character that cannot start any token" for a tab, which hides
        // the usual cause: an editor that indents with tabs.
        const size_t at = parser.problem_mark.index;
        if (parser.error == YAML_SCANNER_ERROR && at < text.size() && text[at] == '\t') {
            const size_t line_start =
                text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at) + 1;
            const bool indentation =
                text.find_first_not_of(" \t", line_start) > at; // only blanks before it
            problem = indentation ? "a tab character in the indentation: YAML indents with "
                                    "spaces only"
                                  : "a tab character where YAML does not allow one (use spaces)";
        }
        Error e = diag_error(file, pos, problem);
        yaml_parser_delete(&parser);
        return e;
    };

    yaml_document_t doc;
    if (!yaml_parser_load(&parser, &doc)) return parser_error();

    Tree tree;
    tree.files.push_back(file);
    yaml_node_t* root = yaml_document_get_root_node(&doc);
    if (root) {
        tree.root = 0; // the root is node 1 in libyaml's 1-based table
        for (yaml_node_t* n = doc.nodes.start; n < doc.nodes.top; ++n) {
            Node node;
            node.pos = to_pos(n->start_mark);
            switch (n->type) {
            case YAML_SCALAR_NODE:
                node.kind = Node::Kind::Scalar;
                node.value.assign(reinterpret_cast<const char*>(n->data.scalar.value),
                                  n->data.scalar.length);
                node.plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                break;
            case YAML_SEQUENCE_NODE:
                node.kind = Node::Kind::Sequence;
                for (yaml_node_item_t* it = n->data.sequence.items.start;
                     it < n->data.sequence.items.top; ++it)
                    node.items.push_back(*it - 1);
                break;
            case YAML_MAPPING_NODE:
                node.kind = Node::Kind::Mapping;
                for (yaml_node_pair_t* p = n->data.mapping.pairs.start;
                     p < n->data.mapping.pairs.top; ++p)
                    node.pairs.emplace_back(p->key - 1, p->value - 1);
                break;
            default:
                break;
            }
            tree.nodes.push_back(std::move(node));
        }
        tree.root = static_cast<int>(root - doc.nodes.start);
    }
    yaml_document_delete(&doc);

    /* A second document is not something the original reads either: refuse it. */
    if (root) {
        yaml_document_t next;
        if (!yaml_parser_load(&parser, &next)) return parser_error();
        bool more = yaml_document_get_root_node(&next) != nullptr;
        SourcePos pos = to_pos(next.start_mark);
        yaml_document_delete(&next);
        if (more) {
            yaml_parser_delete(&parser);
            return diag_error(file, pos, "multiple YAML documents are not supported");
        }
    }
    yaml_parser_delete(&parser);
    return tree;
}

bool is_null(const Node& n) {
    return n.kind == Node::Kind::Scalar && n.plain &&
           (n.value.empty() || n.value == "~" || n.value == "null" || n.value == "Null" ||
            n.value == "NULL");
}

} // namespace ls::config::detail
