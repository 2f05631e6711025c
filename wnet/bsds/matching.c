/* The boundary matcher's C kernels (wnet/bsds/kernels.py): successive shortest augmenting paths for
 * the sparse assignment of wnet/bsds/ssp.py, and a maximum matching for wnet/bsds/assignment.py.
 *
 * ssp_augment: the same method as ssp.py's Python searches (Dijkstra from each free row over reduced costs,
 * through matched columns to their rows, to the nearest free column; the duals of the settled
 * nodes are raised so that the path is tight; the path is flipped), with a binary heap keyed by
 * (distance, column) so that ties go to the lowest column, as in the Python path. Work per search
 * is proportional to the nodes it touches: the per-node state is reset from lists of touched
 * nodes, never by clearing whole arrays.
 *
 * Edges are in CSR by row: the columns of row x are adj_c[ptr[x] .. ptr[x+1]) with costs adj_w.
 * u (nr), v (nc), mate_r (nr), mate_c (nc) are read and updated in place. Returns 0, or -1 when a
 * free row reaches no free column (no full assignment exists), or -2 when memory ran out.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    double d;
    int64_t y;
} item;

static int before(item a, item b) { return a.d < b.d || (a.d == b.d && a.y < b.y); }

static void push(item *h, int64_t *n, item it) {
    int64_t k = (*n)++;
    while (k > 0) {
        int64_t p = (k - 1) / 2;
        if (!before(it, h[p])) break;
        h[k] = h[p];
        k = p;
    }
    h[k] = it;
}

static item pop(item *h, int64_t *n) {
    item top = h[0], last = h[--(*n)];
    int64_t k = 0;
    for (;;) {
        int64_t c = 2 * k + 1;
        if (c >= *n) break;
        if (c + 1 < *n && before(h[c + 1], h[c])) c++;
        if (!before(h[c], last)) break;
        h[k] = h[c];
        k = c;
    }
    h[k] = last;
    return top;
}

typedef struct {
    double *dist_c, *d_row;
    int64_t *pred_c, *touched_c, *settled_r;
    char *state_c; /* 0 untouched, 1 reached, 2 settled */
    char *seen_r;
    item *heap;
} work;

/* Relax the edges of settled row x (at distance d). */
static void relax(const int64_t *ptr, const int64_t *adj_c, const double *adj_w, const double *u,
                  const double *v, work *s, int64_t x, double d, int64_t *nt, int64_t *nh) {
    for (int64_t k = ptr[x]; k < ptr[x + 1]; k++) {
        int64_t y = adj_c[k];
        if (s->state_c[y] == 2) continue;
        double red = adj_w[k] - u[x] - v[y];
        double nd = red > 0 ? d + red : d; /* rounding can leave -1e-16: keep Dijkstra monotone */
        if (s->state_c[y] == 0 || nd < s->dist_c[y]) {
            if (s->state_c[y] == 0) s->touched_c[(*nt)++] = y;
            s->state_c[y] = 1;
            s->dist_c[y] = nd;
            s->pred_c[y] = x;
            push(s->heap, nh, (item){nd, y});
        }
    }
}

/* One search from free row i; on success updates duals and flips the path. */
static int augment(int64_t i, const int64_t *ptr, const int64_t *adj_c, const double *adj_w, double *u,
                   double *v, int64_t *mate_r, int64_t *mate_c, work *s) {
    int64_t nt = 0, nh = 0, ns = 0, j = -1;
    double delta = 0;
    s->settled_r[ns++] = i;
    s->d_row[i] = 0;
    s->seen_r[i] = 1;
    relax(ptr, adj_c, adj_w, u, v, s, i, 0.0, &nt, &nh);
    while (nh > 0) {
        item it = pop(s->heap, &nh);
        int64_t y = it.y;
        if (s->state_c[y] != 1 || it.d != s->dist_c[y]) continue; /* settled, or a stale entry */
        if (mate_c[y] < 0) {
            j = y;
            delta = it.d;
            break;
        }
        s->state_c[y] = 2;
        int64_t z = mate_c[y]; /* its matched row, at the same distance (a tight edge) */
        if (!s->seen_r[z]) {
            s->seen_r[z] = 1;
            s->d_row[z] = it.d;
            s->settled_r[ns++] = z;
            relax(ptr, adj_c, adj_w, u, v, s, z, it.d, &nt, &nh);
        }
    }
    if (j >= 0) {
        for (int64_t a = 0; a < ns; a++) u[s->settled_r[a]] += delta - s->d_row[s->settled_r[a]];
        for (int64_t a = 0; a < nt; a++) {
            int64_t y = s->touched_c[a];
            if (s->state_c[y] == 2) v[y] -= delta - s->dist_c[y];
        }
        int64_t y = j;
        for (;;) { /* flip the path j <- x <- (x's old column) <- ... <- i */
            int64_t x = s->pred_c[y], y_old = mate_r[x];
            mate_r[x] = y;
            mate_c[y] = x;
            if (x == i) break;
            y = y_old;
        }
    }
    for (int64_t a = 0; a < nt; a++) s->state_c[s->touched_c[a]] = 0;
    for (int64_t a = 0; a < ns; a++) s->seen_r[s->settled_r[a]] = 0;
    return j >= 0 ? 0 : -1;
}

int64_t ssp_augment(int64_t nr, int64_t nc, const int64_t *ptr, const int64_t *adj_c, const double *adj_w,
                    double *u, double *v, int64_t *mate_r, int64_t *mate_c, const int64_t *free_rows,
                    int64_t n_free) {
    int64_t ne = ptr[nr];
    work s;
    s.dist_c = malloc(sizeof(double) * (nc + 1));
    s.d_row = malloc(sizeof(double) * (nr + 1));
    s.pred_c = malloc(sizeof(int64_t) * (nc + 1));
    s.touched_c = malloc(sizeof(int64_t) * (nc + 1));
    s.settled_r = malloc(sizeof(int64_t) * (nr + 1));
    s.state_c = calloc(nc + 1, 1);
    s.seen_r = calloc(nr + 1, 1);
    s.heap = malloc(sizeof(item) * (ne + 1)); /* each edge is pushed at most once per search */
    int64_t rc = 0;
    if (!s.dist_c || !s.d_row || !s.pred_c || !s.touched_c || !s.settled_r || !s.state_c || !s.seen_r ||
        !s.heap)
        rc = -2;
    for (int64_t a = 0; rc == 0 && a < n_free; a++)
        rc = augment(free_rows[a], ptr, adj_c, adj_w, u, v, mate_r, mate_c, &s);
    free(s.dist_c);
    free(s.d_row);
    free(s.pred_c);
    free(s.touched_c);
    free(s.settled_r);
    free(s.state_c);
    free(s.seen_r);
    free(s.heap);
    return rc;
}

/* A maximum matching of a bipartite graph (Hopcroft-Karp), for assignment.py's first step.
 *
 * Left vertices 0..n1-1 with their right neighbours in CSR (ptr, adj); mate_l (n1) and mate_r
 * (n2) are filled with the partner or -1. A greedy pass matches most vertices; then phases of a
 * BFS from the free left vertices (layers by alternating path length) and DFS augmentations
 * along shortest paths (each arc tried once per phase), O(E sqrt(V)) in all. Returns 0, or -2
 * when memory ran out. */
int64_t max_matching(int64_t n1, int64_t n2, const int64_t *ptr, const int64_t *adj, int64_t *mate_l,
                     int64_t *mate_r) {
    const int64_t INF = INT64_MAX;
    int64_t *dist = malloc(sizeof(int64_t) * (n1 + 1)), *queue = malloc(sizeof(int64_t) * (n1 + 1));
    int64_t *it = malloc(sizeof(int64_t) * (n1 + 1)), *stack = malloc(sizeof(int64_t) * (n1 + 1));
    int64_t *via = malloc(sizeof(int64_t) * (n1 + 1));
    int64_t rc = 0;
    if (!dist || !queue || !it || !stack || !via) rc = -2;
    for (int64_t v = 0; v < n2; v++) mate_r[v] = -1;
    for (int64_t u = 0; u < n1; u++) {
        mate_l[u] = -1;
        for (int64_t k = ptr[u]; rc == 0 && k < ptr[u + 1]; k++)
            if (mate_r[adj[k]] < 0) {
                mate_l[u] = adj[k];
                mate_r[adj[k]] = u;
                break;
            }
    }
    while (rc == 0) {
        int64_t head = 0, tail = 0, limit = INF; /* limit: length of the shortest augmenting path */
        for (int64_t u = 0; u < n1; u++) {
            dist[u] = mate_l[u] < 0 ? 0 : INF;
            if (mate_l[u] < 0) queue[tail++] = u;
        }
        while (head < tail) {
            int64_t u = queue[head++];
            if (dist[u] >= limit) continue;
            for (int64_t k = ptr[u]; k < ptr[u + 1]; k++) {
                int64_t w = mate_r[adj[k]];
                if (w < 0) {
                    if (limit == INF) limit = dist[u] + 1;
                } else if (dist[w] == INF) {
                    dist[w] = dist[u] + 1;
                    queue[tail++] = w;
                }
            }
        }
        if (limit == INF) break; /* no augmenting path: the matching is maximum */
        for (int64_t u = 0; u < n1; u++) it[u] = ptr[u];
        for (int64_t root = 0; root < n1; root++) {
            if (mate_l[root] >= 0 || dist[root] != 0) continue;
            int64_t top = 0;
            stack[0] = root;
            while (top >= 0) {
                int64_t x = stack[top];
                if (it[x] == ptr[x + 1]) {
                    dist[x] = INF; /* a dead end for the rest of this phase */
                    top--;
                    continue;
                }
                int64_t v = adj[it[x]++], w = mate_r[v];
                if (w < 0) {
                    if (dist[x] + 1 != limit) continue;
                    via[top] = v;
                    for (int64_t a = top; a >= 0; a--) { /* flip the path root .. x -> v */
                        mate_l[stack[a]] = via[a];
                        mate_r[via[a]] = stack[a];
                    }
                    for (int64_t a = 0; a <= top; a++) dist[stack[a]] = INF; /* used this phase */
                    break;
                }
                if (dist[w] == dist[x] + 1 && dist[w] < limit) {
                    via[top] = v;
                    stack[++top] = w;
                }
            }
        }
    }
    free(dist);
    free(queue);
    free(it);
    free(stack);
    free(via);
    return rc;
}
