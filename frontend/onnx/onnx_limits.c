/* A pre-pass over serialized protobuf bytes, run before protobuf_c_message_unpack.
 *
 * protobuf-c 1.4 unpacks nested messages by recursion with no depth limit, so a file of a few
 * kilobytes (a GraphProto inside an AttributeProto inside a NodeProto, a million times) would
 * overflow the stack. This walker follows the generated descriptors: it checks every tag,
 * wire type and length against the buffer, follows only fields declared as messages, and
 * stops at max_depth levels. It also counts the nodes of each graph (and function) against
 * max_nodes of runtime/limits.h, so a model of ten million empty nodes is refused before
 * protobuf-c allocates ten million structs. It allocates nothing and reports the byte offset
 * of a fault. */
#include <inttypes.h>
#include <stdio.h>

#include "../../runtime/limits.h"
#include "onnx_internal.h"

typedef struct wire_walk {
  const uint8_t *base;
  const char *name;
  int max_depth;
  uint64_t max_nodes;
} wire_walk;

static kl_status wire_error(const wire_walk *w, const uint8_t *at,
                            const ProtobufCMessageDescriptor *desc, const char *what) {
  return kl_status_create(KL_ERR_FORMAT, "%s: malformed protobuf at byte %zu (in %s): %s",
                          w->name, (size_t)(at - w->base), desc->name, what);
}

/* The error for a varint at start that read_varint refused: cut off, or over 10 bytes. */
static kl_status varint_error(const wire_walk *w, const uint8_t *start, const uint8_t *end,
                              const ProtobufCMessageDescriptor *desc, const char *what) {
  if (end - start >= 10)
    return wire_error(w, start, desc, "a varint is longer than 10 bytes");
  return wire_error(w, start, desc, what);
}

/* Reads a varint at *p (before end); false when it runs past end or is over 10 bytes. */
static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (*p >= end)
      return false;
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

/* The wire type a field of this protobuf type carries when not packed. */
static int expected_wire_type(ProtobufCType type) {
  switch (type) {
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return 1;
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    return 5;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE:
    return 2;
  default:
    return 0;
  }
}

/* A packed repeated field's payload: whole varints or whole fixed-size elements. */
static kl_status check_packed(const wire_walk *w, const uint8_t *p, const uint8_t *end,
                              const ProtobufCMessageDescriptor *desc, int elem_wire) {
  if (elem_wire == 0) {
    while (p < end) {
      uint64_t v;
      const uint8_t *start = p;
      if (!read_varint(&p, end, &v))
        return varint_error(w, start, end, desc, "a packed varint runs past its field");
    }
    return NULL;
  }
  size_t elem = elem_wire == 1 ? 8 : 4;
  if ((size_t)(end - p) % elem != 0)
    return wire_error(w, p, desc, "a packed field's length is not a multiple of its element size");
  return NULL;
}

static kl_status walk(const wire_walk *w, const uint8_t *p, const uint8_t *end,
                      const ProtobufCMessageDescriptor *desc, int depth) {
  if (depth > w->max_depth)
    return kl_limit_error(KL_LIMIT_PROTO_DEPTH, (uint64_t)depth,
                          "%s: messages nested more than %d deep at byte %zu (in %s)", w->name,
                          w->max_depth, (size_t)(p - w->base), desc->name);
  const uint8_t *start = p;
  uint64_t nodes = 0;
  while (p < end) {
    const uint8_t *field_start = p;
    uint64_t tag;
    if (!read_varint(&p, end, &tag))
      return varint_error(w, field_start, end, desc, "a field tag runs past the end");
    uint64_t number = tag >> 3;
    int wire = (int)(tag & 7);
    if (number == 0 || number > 536870911u)
      return wire_error(w, field_start, desc, "field number 0 or out of range");
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field(desc, (unsigned)number);
    if (field) {
      int want = expected_wire_type(field->type);
      bool packable = field->label == PROTOBUF_C_LABEL_REPEATED && want != 2;
      if (wire != want && !(packable && wire == 2)) {
        char what[160];
        snprintf(what, sizeof what, "field %s has wire type %d, expected %d", field->name, wire,
                 want);
        return wire_error(w, field_start, desc, what);
      }
    }
    uint64_t len;
    const uint8_t *value_start = p;
    switch (wire) {
    case 0:
      if (!read_varint(&p, end, &len))
        return varint_error(w, value_start, end, desc, "a varint runs past the end");
      break;
    case 1:
    case 5: {
      size_t n = wire == 1 ? 8 : 4;
      if ((size_t)(end - p) < n)
        return wire_error(w, field_start, desc, "a fixed-size value runs past the end");
      p += n;
      break;
    }
    case 2:
      if (!read_varint(&p, end, &len))
        return varint_error(w, value_start, end, desc, "a length prefix runs past the end");
      if (len > (uint64_t)(end - p)) {
        char what[160];
        snprintf(what, sizeof what, "a length prefix of %" PRIu64 " bytes runs past the end "
                 "(%zu bytes left)%s%s", len, (size_t)(end - p), field ? " in field " : "",
                 field ? field->name : "");
        return wire_error(w, field_start, desc, what);
      }
      if (field && field->descriptor == &onnx__node_proto__descriptor && ++nodes > w->max_nodes)
        return kl_limit_error(KL_LIMIT_NODES, nodes, "%s: the %s at byte %zu has too many nodes",
                              w->name, desc->name, (size_t)(start - w->base));
      if (field && field->type == PROTOBUF_C_TYPE_MESSAGE)
        KL_RETURN_IF_ERROR(walk(w, p, p + len, field->descriptor, depth + 1));
      else if (field && expected_wire_type(field->type) != 2)
        KL_RETURN_IF_ERROR(check_packed(w, p, p + len, desc, expected_wire_type(field->type)));
      p += len;
      break;
    default:
      return wire_error(w, field_start, desc, "wire type 3, 4, 6 or 7 (groups are not used by "
                                              "ONNX)");
    }
  }
  return NULL;
}

kl_status kl_onnx_check_wire(const uint8_t *data, size_t size,
                             const ProtobufCMessageDescriptor *desc, int max_depth,
                             const char *name) {
  wire_walk w = {data, name ? name : "<buffer>", max_depth > 0 ? max_depth : 64,
                 kl_limits_get()->max_nodes};
  if (size == 0)
    return NULL;
  return walk(&w, data, data + size, desc, 1);
}
